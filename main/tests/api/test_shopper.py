"""The signed `shopper` cookie: issued on first contact, verified, forged ones replaced."""

import uuid

import pytest

from app.api.shopper import MAX_COOKIE_LENGTH, sign_shopper_id, verify_cookie

URL = "/flask/api/products"


def shopper_cookie(response):
    header = response.headers.get("Set-Cookie")
    return header


def test_first_contact_sets_a_signed_httponly_lax_cookie(client):
    response = client.get(URL)

    header = response.headers["Set-Cookie"]
    assert header.startswith("shopper=")
    assert "HttpOnly" in header
    assert "SameSite=Lax" in header
    assert "Path=/" in header
    assert "Max-Age=7776000" in header  # 90 days
    assert "Secure" not in header  # plain HTTP
    value = header.split(";", 1)[0].split("=", 1)[1]
    shopper_id, timestamp, signature = value.split(".")
    assert uuid.UUID(shopper_id).version == 4
    assert timestamp and signature


def test_a_valid_cookie_is_kept_and_not_reissued(client):
    client.get(URL)

    response = client.get(URL)

    assert "Set-Cookie" not in response.headers


def test_each_new_client_is_a_different_shopper(app):
    values = {app.test_client().get(URL).headers["Set-Cookie"].split(";")[0] for _ in range(3)}
    assert len(values) == 3


def test_health_does_not_issue_cookies(client):
    assert "Set-Cookie" not in client.get("/flask/api/health").headers


@pytest.mark.parametrize(
    "value",
    [
        "not-signed",
        str(uuid.uuid4()),
        str(uuid.uuid4()) + ".forgedsignature",
        "x" * (MAX_COOKIE_LENGTH + 1),
        "",
    ],
)
def test_forged_or_broken_cookie_gets_a_fresh_identity(client, value):
    client.set_cookie("shopper", value)

    response = client.get(URL)

    assert response.status_code == 200
    assert response.headers["Set-Cookie"].startswith("shopper=")
    assert value not in response.headers["Set-Cookie"].split(";")[0].split("=", 1)[1] or value == ""


def test_tampered_cookie_cannot_take_over_another_shoppers_likes(app, client, add_product):
    add_product(1)
    client.post("/flask/api/products/1/like")
    victim_id = client.get_cookie("shopper").value.split(".")[0]

    attacker = app.test_client()
    attacker.set_cookie("shopper", victim_id + ".AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    response = attacker.get(URL)

    assert response.get_json()[0]["liked"] is False
    assert attacker.post("/flask/api/products/1/like").status_code == 200


def test_cookie_signed_with_another_key_is_rejected(app):
    from tests.conftest import make_app

    with app.test_request_context():
        value = sign_shopper_id(str(uuid.uuid4()))
        assert verify_cookie(value) is not None
    other = make_app(app.config["SQLALCHEMY_DATABASE_URI"], SECRET_KEY="another-key")
    with other.test_request_context():
        assert verify_cookie(value) is None


def test_signed_non_uuid_is_rejected(app):
    with app.test_request_context():
        assert verify_cookie(sign_shopper_id("admin")) is None
