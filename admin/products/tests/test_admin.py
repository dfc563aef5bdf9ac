"""Changes made in the Django admin go through products.services and write outbox events."""

import pytest
from django.contrib.auth import get_user_model

from messaging.models import OutboxEvent
from products.models import Product

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_site_client(client, settings):
    user = get_user_model().objects.create_superuser("root", "root@example.com", "root-pass-123")
    client.force_login(user)
    return client, "/" + settings.DJANGO_ADMIN_URL


def event_types():
    return list(OutboxEvent.objects.order_by("id").values_list("event_type", flat=True))


def test_admin_add_change_delete_write_events(admin_site_client):
    client, base = admin_site_client
    response = client.post(
        f"{base}products/product/add/",
        {"title": "Chair", "image": "https://e.com/c.png"},
    )
    assert response.status_code == 302, response.content[:500]
    product = Product.objects.get()
    assert product.version == 1
    response = client.post(
        f"{base}products/product/{product.pk}/change/",
        {"title": "Stool", "image": "https://e.com/s.png"},
    )
    assert response.status_code == 302
    product.refresh_from_db()
    assert (product.title, product.version) == ("Stool", 2)
    response = client.post(f"{base}products/product/{product.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert event_types() == ["product.created", "product.updated", "product.deleted"]


def test_admin_bulk_delete_writes_one_event_per_product(admin_site_client):
    client, base = admin_site_client
    ids = [Product.objects.create(title=f"p{n}", image=f"https://e.com/{n}.png").pk for n in range(2)]
    response = client.post(
        f"{base}products/product/",
        {"action": "delete_selected", "_selected_action": ids, "post": "yes"},
    )
    assert response.status_code == 302
    assert not Product.objects.exists()
    assert event_types() == ["product.deleted", "product.deleted"]


def test_admin_rejects_non_http_image(admin_site_client):
    client, base = admin_site_client
    response = client.post(f"{base}products/product/add/", {"title": "Chair", "image": "ftp://e.com/c.png"})
    assert response.status_code == 200  # form redisplayed with an error
    assert not Product.objects.exists()
    assert not OutboxEvent.objects.exists()


def test_admin_lists_and_messaging_tables_are_read_only(admin_site_client, product):
    client, base = admin_site_client
    assert client.get(f"{base}products/product/?q=mug").status_code == 200
    assert client.get(f"{base}products/user/").status_code == 200
    assert client.get(f"{base}messaging/outboxevent/").status_code == 200
    assert client.get(f"{base}messaging/outboxevent/add/").status_code == 403


def test_the_index_names_each_model_once(admin_site_client):
    client, base = admin_site_client
    page = client.get(base).content.decode()
    # Staff accounts (auth) and the shop's users used to both read "Users".
    assert page.count(">Users</a>") == 1, page
    assert page.count(">Shop users</a>") == 1, page
