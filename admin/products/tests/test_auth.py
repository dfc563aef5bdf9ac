"""Reads are public; writes need staff via token, basic or session (+CSRF) auth."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from products.models import Product

from .conftest import STAFF_PASSWORD, basic_header

pytestmark = pytest.mark.django_db

GOOD = {"title": "Lamp", "image": "https://example.com/lamp.png"}


def test_anonymous_write_is_401_json(anon, product):
    for response in (
        anon.post("/api/products", GOOD, format="json"),
        anon.patch(f"/api/products/{product.pk}", {"title": "x"}, format="json"),
        anon.delete(f"/api/products/{product.pk}"),
    ):
        assert response.status_code == 401
        assert response.json()["error"] == "not_authenticated"
        # A "Token" challenge: no browser basic-auth pop-up for the SPA.
        assert response["WWW-Authenticate"] == "Token"
    assert Product.objects.count() == 1


def test_non_staff_write_is_403(plain_user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=basic_header("shopper", "shopper-pass-123"))
    response = client.post("/api/products", GOOD, format="json")
    assert response.status_code == 403
    assert response.json()["error"] == "permission_denied"


def test_wrong_basic_password_is_401(staff_user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=basic_header("staff", "wrong"))
    assert client.post("/api/products", GOOD, format="json").status_code == 401


def test_basic_auth_staff_can_write(staff):
    assert staff.post("/api/products", GOOD, format="json").status_code == 201


def test_token_endpoint_and_token_auth(anon, staff_user):
    response = anon.post(
        "/api/auth/token",
        {"username": "staff", "password": STAFF_PASSWORD},
        format="json",
    )
    assert response.status_code == 200
    token = response.json()["token"]
    assert Token.objects.get(user=staff_user).key == token
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.post("/api/products", GOOD, format="json").status_code == 201


def test_token_endpoint_refuses_bad_credentials_and_non_staff(anon, plain_user, staff_user):
    bad = anon.post("/api/auth/token", {"username": "staff", "password": "x"}, format="json")
    assert (bad.status_code, bad.json()["error"]) == (400, "invalid_credentials")
    shopper = {"username": "shopper", "password": "shopper-pass-123"}
    assert anon.post("/api/auth/token", shopper, format="json").status_code == 400
    typed = anon.post("/api/auth/token", {"username": 1, "password": []}, format="json")
    assert typed.status_code == 400
    assert set(typed.json()["fields"]) == {"username", "password"}


def test_invalid_token_is_401(anon):
    anon.credentials(HTTP_AUTHORIZATION="Token nope")
    response = anon.post("/api/products", GOOD, format="json")
    assert (response.status_code, response.json()["detail"]) == (401, "Invalid token.")


def test_a_token_of_an_inactive_user_is_401(staff_user):
    token = Token.objects.create(user=staff_user)
    staff_user.is_active = False
    staff_user.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    response = client.post("/api/products", GOOD, format="json")
    assert (response.status_code, response.json()["detail"]) == (401, "User inactive or deleted.")


def test_a_token_request_reads_its_token_and_user_in_one_query(staff_user):
    token = Token.objects.create(user=staff_user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/api/auth/me")
    assert response.json() == {"authenticated": True, "username": "staff", "is_staff": True}
    reads = [query["sql"] for query in queries.captured_queries if "authtoken_token" in query["sql"]]
    assert len(reads) == 1
    assert "auth_user" in reads[0]


def _csrf_client():
    client = Client(enforce_csrf_checks=True)
    response = client.get("/api/auth/csrf")
    assert response.status_code == 200
    token = client.cookies["csrftoken"].value
    assert response.json()["csrf_token"]
    return client, token


def _login(client, token):
    return client.post(
        "/api/auth/login",
        {"username": "staff", "password": STAFF_PASSWORD},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )


def test_session_login_then_write_with_csrf(staff_user):
    client, token = _csrf_client()
    response = _login(client, token)
    assert response.status_code == 200
    assert response.json()["authenticated"] is True
    token = client.cookies["csrftoken"].value  # rotated on login
    me = client.get("/api/auth/me").json()
    assert (me["authenticated"], me["username"], me["is_staff"]) == (
        True,
        "staff",
        True,
    )
    created = client.post("/api/products", GOOD, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert created.status_code == 201


def test_session_write_without_csrf_is_403(staff_user):
    client, token = _csrf_client()
    assert _login(client, token).status_code == 200
    response = client.post("/api/products", GOOD, content_type="application/json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert not Product.objects.exists()


def test_login_without_csrf_is_403_json(staff_user):
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        "/api/auth/login",
        {"username": "staff", "password": STAFF_PASSWORD},
        content_type="application/json",
    )
    assert response.status_code == 403
    assert response.json()["error"] == "csrf_failed"


def test_login_refuses_bad_password_and_non_staff(plain_user, staff_user):
    client, token = _csrf_client()
    bad = client.post(
        "/api/auth/login",
        {"username": "staff", "password": "nope"},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )
    assert (bad.status_code, bad.json()["error"]) == (400, "invalid_credentials")
    shopper = client.post(
        "/api/auth/login",
        {"username": "shopper", "password": "shopper-pass-123"},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )
    assert shopper.status_code == 400
    assert client.get("/api/auth/me").json() == {"authenticated": False}


def test_logout_ends_the_session(staff_user):
    client, token = _csrf_client()
    _login(client, token)
    token = client.cookies["csrftoken"].value
    assert (
        client.post("/api/auth/logout", content_type="application/json", HTTP_X_CSRFTOKEN=token).status_code
        == 200
    )
    assert client.get("/api/auth/me").json() == {"authenticated": False}


def test_logout_without_csrf_is_403(staff_user):
    client, token = _csrf_client()
    _login(client, token)
    assert client.post("/api/auth/logout", content_type="application/json").status_code == 403


def test_me_is_200_for_anonymous(anon):
    response = anon.get("/api/auth/me")
    assert (response.status_code, response.json()) == (200, {"authenticated": False})
