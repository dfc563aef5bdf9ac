"""Password guessing is throttled on every login path, and API tokens expire and can be revoked."""

import datetime
import time
from unittest import mock

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from .conftest import STAFF_PASSWORD, basic_header

pytestmark = pytest.mark.django_db

LIMIT = 5


@pytest.fixture(autouse=True)
def _throttling(settings):
    settings.AXES_FAILURE_LIMIT = LIMIT + 1  # as settings.py derives it from LOGIN_FAILURE_LIMIT
    settings.AXES_COOLOFF_TIME = datetime.timedelta(seconds=2)


def session_login(client, password, address="127.0.0.1"):
    return client.post(
        "/api/auth/login", {"username": "staff", "password": password}, format="json", REMOTE_ADDR=address
    )


def token_login(client, password, address="127.0.0.1"):
    return client.post(
        "/api/auth/token", {"username": "staff", "password": password}, format="json", REMOTE_ADDR=address
    )


def basic_get(client, password, address="127.0.0.1"):
    return client.get(
        "/api/products", HTTP_AUTHORIZATION=basic_header("staff", password), REMOTE_ADDR=address
    )


def admin_login(client, password, address="127.0.0.1"):
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": "staff", "password": password},
        REMOTE_ADDR=address,
    )


WRONG_STATUS = {session_login: 400, token_login: 400, basic_get: 401, admin_login: 200}
OK_STATUS = {session_login: 200, token_login: 200, basic_get: 200, admin_login: 302}


@pytest.mark.parametrize(
    "attempt", [session_login, token_login, basic_get, admin_login], ids=lambda f: f.__name__
)
def test_the_n_plus_first_wrong_password_gets_429_and_a_right_one_works_after_the_window(staff_user, attempt):
    client = Client() if attempt is admin_login else APIClient()
    for _ in range(LIMIT):
        assert attempt(client, "wrong").status_code == WRONG_STATUS[attempt]

    locked = attempt(client, "wrong")
    with mock.patch("django.contrib.auth.base_user.check_password") as hasher:
        right_but_locked = attempt(client, STAFF_PASSWORD)
    assert locked.status_code == 429, locked.content
    assert right_but_locked.status_code == 429
    assert hasher.call_count == 0, "a locked-out address must not cost a password hash"
    assert 1 <= int(locked["Retry-After"]) <= 2
    assert locked.json()["error"] in ("too_many_login_failures", "throttled")

    other_address = attempt(Client() if attempt is admin_login else APIClient(), STAFF_PASSWORD, "10.1.2.3")
    assert other_address.status_code == OK_STATUS[attempt]

    time.sleep(2.1)
    assert attempt(client, STAFF_PASSWORD).status_code == OK_STATUS[attempt]


def test_a_success_resets_the_count(staff_user):
    client = APIClient()
    for _ in range(LIMIT - 1):
        token_login(client, "wrong")
    assert token_login(client, STAFF_PASSWORD).status_code == 200
    for _ in range(LIMIT - 1):
        assert token_login(client, "wrong").status_code == 400


def test_failures_behind_the_trusted_proxy_count_per_forwarded_client(staff_user, settings):
    settings.TRUSTED_PROXY_HOPS = 1
    client = APIClient()

    def guess(forwarded_for):
        return client.post(
            "/api/auth/token",
            {"username": "staff", "password": "wrong"},  # pragma: allowlist secret
            format="json",
            HTTP_X_FORWARDED_FOR=forwarded_for,
        ).status_code

    assert [guess("spoofed, 203.0.113.5") for _ in range(LIMIT + 1)][-1] == 429
    assert guess("203.0.113.6") == 400  # another client behind the same proxy


def test_an_expired_token_is_refused_and_a_new_one_is_issued(staff_user, settings):
    settings.API_TOKEN_TTL_HOURS = 24
    client = APIClient()
    first = token_login(client, STAFF_PASSWORD).json()
    assert datetime.datetime.fromisoformat(first["expires_at"].replace("Z", "+00:00")) > timezone.now()
    client.credentials(HTTP_AUTHORIZATION=f"Token {first['token']}")
    assert (
        client.post(
            "/api/products", {"title": "Lamp", "image": "https://example.com/lamp.png"}, format="json"
        ).status_code
        == 201
    )

    Token.objects.filter(key=first["token"]).update(created=timezone.now() - datetime.timedelta(hours=25))
    expired = client.post(
        "/api/products", {"title": "Lamp", "image": "https://example.com/lamp.png"}, format="json"
    )
    assert expired.status_code == 401
    assert "expired" in expired.json()["detail"]

    second = token_login(APIClient(), STAFF_PASSWORD).json()
    assert second["token"] != first["token"]
    assert not Token.objects.filter(key=first["token"]).exists()


def test_a_token_can_be_revoked(staff_user):
    key = token_login(APIClient(), STAFF_PASSWORD).json()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")

    assert client.delete("/api/auth/token").status_code == 204
    assert (
        client.post(
            "/api/products", {"title": "Lamp", "image": "https://example.com/lamp.png"}, format="json"
        ).status_code
        == 401
    )
    assert APIClient().delete("/api/auth/token").status_code == 401
