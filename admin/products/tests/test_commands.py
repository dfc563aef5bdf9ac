"""seed_demo and ensure_superuser are idempotent."""

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from messaging.models import OutboxEvent
from products.models import Product, User

pytestmark = pytest.mark.django_db


def run(name):
    out = io.StringIO()
    call_command(name, stdout=out)
    return out.getvalue()


def test_seed_demo_adds_products_and_users_once():
    run("seed_demo")
    assert Product.objects.count() == 5
    assert User.objects.count() == 3
    assert all(p.image.startswith("https://") for p in Product.objects.all())
    assert OutboxEvent.objects.filter(event_type="product.created").count() == 5
    assert "exist" in run("seed_demo")
    assert (
        Product.objects.count(),
        User.objects.count(),
        OutboxEvent.objects.count(),
    ) == (5, 3, 5)


def test_ensure_superuser_defaults(monkeypatch):
    for name in ("ADMIN_USERNAME", "ADMIN_PASSWORD", "ADMIN_EMAIL"):
        monkeypatch.delenv(name, raising=False)
    out = run("ensure_superuser")
    user = get_user_model().objects.get(username="admin")
    assert user.is_superuser and user.is_staff and user.check_password("admin")
    assert "'admin'" in out and "password from ADMIN_PASSWORD" in out
    assert "exists" in run("ensure_superuser")
    assert get_user_model().objects.count() == 1


def test_ensure_superuser_from_env(monkeypatch):
    monkeypatch.setenv("ADMIN_USERNAME", "boss")
    monkeypatch.setenv("ADMIN_PASSWORD", "s3cret-pass")
    monkeypatch.setenv("ADMIN_EMAIL", "boss@example.com")
    out = run("ensure_superuser")
    user = get_user_model().objects.get(username="boss")
    assert user.email == "boss@example.com" and user.check_password("s3cret-pass")
    assert "boss" in out and "s3cret-pass" not in out  # the password is never logged
    assert "s3cret-pass" not in run("ensure_superuser")


@pytest.mark.parametrize(
    ("password", "says"),
    [
        ("admin", "development default"),
        ("change-me", "placeholder"),
        ("12345678901", "entirely numeric"),
        ("password123", "too common"),
        ("sh0rt", "too short"),
    ],
)
def test_in_production_a_weak_superuser_password_is_refused(monkeypatch, settings, password, says):
    from django.core.management.base import CommandError

    settings.PRODUCTION = True
    monkeypatch.setenv("ADMIN_USERNAME", "boss")
    monkeypatch.setenv("ADMIN_PASSWORD", password)
    with pytest.raises(CommandError) as excinfo:
        run("ensure_superuser")
    assert says in str(excinfo.value)
    assert not get_user_model().objects.filter(username="boss").exists()


def test_in_production_a_strong_superuser_password_is_accepted(monkeypatch, settings):
    settings.PRODUCTION = True
    monkeypatch.setenv("ADMIN_USERNAME", "boss")
    monkeypatch.setenv("ADMIN_PASSWORD", "Copper-kettle-7-lantern")  # pragma: allowlist secret
    run("ensure_superuser")
    assert get_user_model().objects.get(username="boss").check_password("Copper-kettle-7-lantern")
