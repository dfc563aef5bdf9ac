"""products.services saves each change and its outbox event in one transaction."""

import json

import pytest
from django.db import transaction
from django.http import Http404

from messaging.models import OutboxEvent
from products import services
from products.models import Product

pytestmark = pytest.mark.django_db


def envelopes():
    return [json.loads(row.payload) for row in OutboxEvent.objects.order_by("id")]


def test_create_writes_product_created_with_version_1():
    product = services.create_product(title="Mug", image="https://e.com/m.png")
    [env] = envelopes()
    assert env["type"] == "product.created"
    assert env["producer"] == "admin"
    assert env["data"] == {
        "id": product.pk,
        "title": "Mug",
        "image": "https://e.com/m.png",
        "version": 1,
    }
    row = OutboxEvent.objects.get()
    assert (row.event_id, row.event_type, row.published_at, row.attempts) == (
        env["id"],
        "product.created",
        None,
        0,
    )


def test_update_bumps_version_and_writes_product_updated(product):
    services.update_product(product.pk, title="Cup")
    services.update_product(product.pk, image="https://e.com/cup.png")
    product.refresh_from_db()
    assert (product.title, product.image, product.version) == (
        "Cup",
        "https://e.com/cup.png",
        3,
    )
    updates = [env["data"] for env in envelopes() if env["type"] == "product.updated"]
    assert [d["version"] for d in updates] == [2, 3]
    assert updates[-1] == {
        "id": product.pk,
        "title": "Cup",
        "image": "https://e.com/cup.png",
        "version": 3,
    }


def test_update_never_overwrites_likes(product):
    services.apply_likes(product.pk, likes=7, seq=3)
    services.update_product(product.pk, title="Cup")
    product.refresh_from_db()
    assert (product.likes, product.likes_seq) == (7, 3)


def test_update_refuses_non_editable_fields(product):
    with pytest.raises(ValueError, match="likes"):
        services.update_product(product.pk, likes=3)


def test_delete_writes_product_deleted_with_next_version(product):
    services.update_product(product.pk, title="Cup")
    version = services.delete_product(product.pk)
    assert version == 3
    assert envelopes()[-1]["type"] == "product.deleted"
    assert envelopes()[-1]["data"] == {"id": product.pk, "version": 3}
    assert not Product.objects.filter(pk=product.pk).exists()


def test_missing_product_is_404_and_writes_nothing():
    with pytest.raises(Http404):
        services.update_product(12345, title="x")
    with pytest.raises(Http404):
        services.delete_product(12345)
    assert not OutboxEvent.objects.exists()


def test_rollback_removes_both_the_change_and_its_event():
    with pytest.raises(RuntimeError), transaction.atomic():
        services.create_product(title="Ghost", image="https://e.com/g.png")
        raise RuntimeError("the caller's transaction fails later")
    assert not Product.objects.exists()
    assert not OutboxEvent.objects.exists()


def test_failed_event_build_rolls_back_the_change(product, monkeypatch):
    def broken(event_type, data, **_):
        raise ValueError("contract says no")

    monkeypatch.setattr("messaging.outbox.contract.envelope", broken)
    with pytest.raises(ValueError):
        services.update_product(product.pk, title="Never")
    product.refresh_from_db()
    assert (product.title, product.version) == ("Blue mug", 1)
    assert OutboxEvent.objects.count() == 1  # only the create


def test_apply_likes_is_ordered_by_seq(product):
    assert services.apply_likes(product.pk, likes=2, seq=2) is True
    assert services.apply_likes(product.pk, likes=1, seq=1) is False  # older: ignored
    product.refresh_from_db()
    assert (product.likes, product.likes_seq) == (2, 2)
    assert services.apply_likes(product.pk, likes=2, seq=2) is True  # redelivery: same state
    assert services.apply_likes(product.pk, likes=5, seq=4) is True
    product.refresh_from_db()
    assert (product.likes, product.likes_seq) == (5, 4)


def test_apply_likes_for_unknown_product_matches_nothing():
    assert services.apply_likes(4242, likes=1, seq=1) is False


def test_apply_likes_writes_no_event_and_keeps_version(product):
    services.apply_likes(product.pk, likes=3, seq=1)
    product.refresh_from_db()
    assert product.version == 1
    assert OutboxEvent.objects.count() == 1
