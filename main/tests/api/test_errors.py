"""Bad input gets a clear JSON 4xx, never a 500; unexpected errors get a logged JSON 500."""

import logging

import pytest


def test_unknown_route_is_json_404(client):
    response = client.get("/flask/api/nope")
    assert response.status_code == 404
    assert response.is_json
    assert response.get_json()["error"] == "not_found"


@pytest.mark.parametrize(
    ("method", "url", "allowed"),
    [
        ("put", "/flask/api/products", {"GET", "HEAD", "OPTIONS"}),
        ("get", "/flask/api/products/1/like", {"POST", "DELETE", "OPTIONS"}),
        ("patch", "/flask/api/products/1/like", {"POST", "DELETE", "OPTIONS"}),
        ("post", "/flask/api/health", {"GET", "HEAD", "OPTIONS"}),
    ],
)
def test_wrong_method_is_json_405_with_allow(client, method, url, allowed):
    response = getattr(client, method)(url)

    assert response.status_code == 405
    assert response.get_json()["error"] == "method_not_allowed"
    assert {m.strip() for m in response.headers["Allow"].split(",")} == allowed


def test_unexpected_exception_is_logged_json_500(app, client, monkeypatch, caplog):
    from app import services

    def boom(*args, **kwargs):
        raise RuntimeError("database exploded")

    monkeypatch.setattr(services, "list_products", boom)
    with caplog.at_level(logging.ERROR, logger="app.api.errors"):
        response = client.get("/flask/api/products")

    assert response.status_code == 500
    assert response.get_json() == {
        "error": "internal_error",
        "detail": response.get_json()["detail"],
    }
    assert "database exploded" not in response.get_data(as_text=True)
    assert any("RuntimeError" in r.getMessage() for r in caplog.records)


def test_cors_is_off_without_allowed_origins(client):
    response = client.get("/flask/api/products", headers={"Origin": "http://evil.example"})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_cors_allows_only_the_configured_origins_with_credentials(database_url):
    from tests.conftest import make_app

    app = make_app(database_url, CORS_ALLOWED_ORIGINS=["http://localhost:5173"])
    client = app.test_client()

    good = client.get("/flask/api/products", headers={"Origin": "http://localhost:5173"})
    bad = client.get("/flask/api/products", headers={"Origin": "http://evil.example"})

    assert good.headers["Access-Control-Allow-Origin"] == "http://localhost:5173"
    assert good.headers["Access-Control-Allow-Credentials"] == "true"
    assert "Access-Control-Allow-Origin" not in bad.headers
