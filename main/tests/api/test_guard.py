"""Like abuse: per-client rate limits with 429 + Retry-After, cross-site likes refused, cookies that expire."""

import time
from collections import Counter

import pytest
from itsdangerous import Signer

from app.api.shopper import COOKIE_NAME, REFRESH_AFTER_SECONDS, verify_cookie
from tests.conftest import make_app

LIKE = "/flask/api/products/{}/like"
LIST = "/flask/api/products"


@pytest.fixture
def guarded_app(database_url, add_product):
    """An app with the production-like default budgets (conftest's app raises them for other tests)."""
    app = make_app(database_url, LIKES_RATE_LIMIT="60 per minute", NEW_SHOPPER_RATE_LIMIT="10 per minute")
    return app


def _add_products(app, count):
    from app.extensions import db
    from app.models import Product

    with app.app_context():
        for product_id in range(1, count + 1):
            db.session.add(Product(id=product_id, title=f"P{product_id}", image="", likes=0, version=1))
        db.session.commit()


def test_500_cookieless_likes_from_one_client_get_at_most_the_budget(guarded_app):
    _add_products(guarded_app, 1)
    started = time.monotonic()
    statuses = Counter()
    retry_after = set()
    for _ in range(500):
        # A fresh client per request: no cookie is ever sent back, as a script discarding it would.
        response = guarded_app.test_client().post(LIKE.format(1))
        statuses[response.status_code] += 1
        if response.status_code == 429:
            retry_after.add(response.headers.get("Retry-After"))
            assert response.get_json()["error"] == "too_many_requests"
    elapsed = time.monotonic() - started

    assert elapsed < 10, f"the 500 likes took {elapsed:.1f} s, not a burst"
    assert statuses[200] == 10, statuses  # NEW_SHOPPER_RATE_LIMIT: 10 identities a minute
    assert statuses[429] == 490, statuses
    assert not [code for code in statuses if code >= 500]
    assert None not in retry_after and all(1 <= int(value) <= 61 for value in retry_after)
    with guarded_app.test_client() as client:
        assert client.get(LIST).get_json()[0]["likes"] == 10


def test_a_kept_cookie_is_held_by_the_per_client_like_budget(guarded_app):
    _add_products(guarded_app, 80)
    client = guarded_app.test_client()
    client.get(LIST)
    statuses = Counter(client.post(LIKE.format(product_id)).status_code for product_id in range(1, 81))

    assert statuses == {200: 60, 429: 20}
    limited = client.post(LIKE.format(1))
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.headers["X-RateLimit-Limit"] == "60"


def test_over_the_new_shopper_budget_the_gallery_still_shows_without_a_cookie(guarded_app):
    _add_products(guarded_app, 1)
    for _ in range(10):
        assert "Set-Cookie" in guarded_app.test_client().get(LIST).headers

    response = guarded_app.test_client().get(LIST)

    assert response.status_code == 200
    assert response.get_json()[0]["liked"] is False
    assert "Set-Cookie" not in response.headers


def test_limits_are_per_client_address(guarded_app):
    _add_products(guarded_app, 1)
    for _ in range(10):
        guarded_app.test_client().post(LIKE.format(1))
    assert guarded_app.test_client().post(LIKE.format(1)).status_code == 429

    other = guarded_app.test_client().post(LIKE.format(1), environ_base={"REMOTE_ADDR": "10.0.0.7"})

    assert other.status_code == 200


def test_behind_a_trusted_proxy_the_forwarded_address_is_the_client(database_url):
    app = make_app(database_url, NEW_SHOPPER_RATE_LIMIT="2 per minute", TRUSTED_PROXY_HOPS=1)
    _add_products(app, 1)

    def like(address):
        return app.test_client().post(LIKE.format(1), headers={"X-Forwarded-For": address}).status_code

    assert [like("203.0.113.1") for _ in range(3)] == [200, 200, 429]
    assert like("203.0.113.2") == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
        {"Sec-Fetch-Site": "same-site", "Origin": "https://evil.shop.example"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
    ],
)
def test_a_cross_site_like_is_refused(client, add_product, headers):
    add_product(1)
    client.get(LIST)

    for method in (client.post, client.delete):
        response = method(LIKE.format(1), headers=headers)
        assert response.status_code == 403
        assert response.get_json()["error"] == "cross_site"
    assert client.get(LIST).get_json()[0]["likes"] == 0


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "same-origin", "Origin": "http://localhost"},
        {"Origin": "http://localhost"},
        {},
    ],
)
def test_same_origin_and_non_browser_likes_pass(client, add_product, headers):
    add_product(1)
    assert client.post(LIKE.format(1), headers=headers).status_code == 200


def test_an_allowed_cors_origin_may_like(database_url, add_product):
    app = make_app(database_url, CORS_ALLOWED_ORIGINS=["https://shop.example"])
    _add_products(app, 1)
    response = app.test_client().post(
        LIKE.format(1), headers={"Sec-Fetch-Site": "cross-site", "Origin": "https://shop.example"}
    )
    assert response.status_code == 200


def test_an_expired_cookie_is_a_new_shopper(app, monkeypatch):
    client = app.test_client()
    client.get(LIST)
    old = client.get_cookie(COOKIE_NAME).value
    later = time.time() + app.config["SHOPPER_COOKIE_MAX_AGE"] + 5
    monkeypatch.setattr(time, "time", lambda: later)

    with app.test_request_context():
        assert verify_cookie(old) is None
    response = app.test_client().get(LIST, headers={"Cookie": f"{COOKIE_NAME}={old}"})
    assert "Set-Cookie" in response.headers


def test_a_cookie_in_use_is_signed_again_after_a_day_with_the_same_identity(app, monkeypatch):
    client = app.test_client()
    client.get(LIST)
    first = client.get_cookie(COOKIE_NAME).value
    assert "Set-Cookie" not in client.get(LIST).headers  # fresh: kept
    later = time.time() + REFRESH_AFTER_SECONDS + 5
    monkeypatch.setattr(time, "time", lambda: later)

    response = client.get(LIST)

    assert "Set-Cookie" in response.headers
    second = client.get_cookie(COOKIE_NAME).value
    assert second != first
    with app.test_request_context():
        assert verify_cookie(second) == verify_cookie(first)


def test_a_legacy_cookie_without_timestamp_keeps_its_shopper_and_is_resigned(app):
    import hashlib
    import uuid

    shopper_id = str(uuid.uuid4())
    legacy = Signer("test-secret-key", salt="shopper", digest_method=hashlib.sha256).sign(shopper_id).decode()
    client = app.test_client()
    client.set_cookie(COOKIE_NAME, legacy)

    response = client.get(LIST)

    assert "Set-Cookie" in response.headers
    with app.test_request_context():
        assert verify_cookie(client.get_cookie(COOKIE_NAME).value) == shopper_id


def test_the_cookie_is_secure_when_the_request_came_over_https(client):
    response = client.get(LIST, base_url="https://localhost")
    assert "Secure" in response.headers["Set-Cookie"]


def test_a_failing_limit_store_never_fails_a_like(database_url):
    app = make_app(database_url, RATELIMIT_STORAGE_URI="redis://127.0.0.1:1/0")
    _add_products(app, 1)
    statuses = {app.test_client().post(LIKE.format(1)).status_code for _ in range(3)}
    assert statuses == {200}
