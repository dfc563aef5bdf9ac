"""Role-named fixtures for the admin service tests."""

import base64

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from config.health import reset_broker_cache
from products import services

STAFF_PASSWORD = "staff-pass-123"  # test-only credentials


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2 costs ~1 s per basic-auth request on a busy machine; tests need no real hashing.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_broker_cache():
    reset_broker_cache()
    yield
    reset_broker_cache()


@pytest.fixture
def anon():
    """An API client without credentials."""
    return APIClient()


@pytest.fixture
def staff_user(db):
    """An active staff user."""
    return get_user_model().objects.create_user(username="staff", password=STAFF_PASSWORD, is_staff=True)


@pytest.fixture
def plain_user(db):
    """An active user who is not staff."""
    return get_user_model().objects.create_user(username="shopper", password="shopper-pass-123")


def basic_header(username: str, password: str) -> str:
    """Return an HTTP Basic Authorization header value."""
    raw = f"{username}:{password}".encode()
    return "Basic " + base64.b64encode(raw).decode()


@pytest.fixture
def staff(staff_user):
    """An API client authenticated as staff with HTTP Basic auth."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=basic_header("staff", STAFF_PASSWORD))
    return client


@pytest.fixture
def product(db):
    """One product created through the service layer."""
    return services.create_product(title="Blue mug", image="https://example.com/mug.png")
