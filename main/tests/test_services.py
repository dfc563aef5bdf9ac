"""The like transaction: counter, like row and outbox event commit together or not at all."""

import json

import pytest

from app import services
from app.extensions import db
from app.models import OutboxEvent, Product, ProductLike

SHOPPER = "6f1c2b3a-0000-4000-8000-000000000001"


def state(app, product_id=1):
    with app.app_context():
        product = db.session.get(Product, product_id)
        return (
            product.likes,
            product.likes_seq,
            db.session.query(ProductLike).count(),
            db.session.query(OutboxEvent).count(),
        )


def test_like_then_unlike(app, add_product):
    add_product(1, likes=2)
    with app.app_context():
        assert services.like(SHOPPER, 1) == {"id": 1, "likes": 3, "liked": True}
        assert services.list_products(SHOPPER)[0][0]["liked"] is True
        assert services.unlike(SHOPPER, 1) == {"id": 1, "likes": 2, "liked": False}
    assert state(app) == (2, 2, 0, 2)


@pytest.mark.parametrize("operation", ["like", "unlike"])
def test_a_failing_outbox_write_rolls_back_the_whole_change(app, add_product, monkeypatch, operation):
    add_product(1, likes=5)
    if operation == "unlike":
        with app.app_context():
            services.like(SHOPPER, 1)
    before = state(app)

    def broken_outbox(connection, event_type, data):
        raise RuntimeError("outbox unavailable")

    monkeypatch.setattr(services, "enqueue_core", broken_outbox)
    with app.app_context(), pytest.raises(RuntimeError):
        getattr(services, operation)(SHOPPER, 1)

    assert state(app) == before


def test_already_liked_leaves_no_trace(app, add_product):
    add_product(1)
    with app.app_context():
        services.like(SHOPPER, 1)
        with pytest.raises(services.AlreadyLiked):
            services.like(SHOPPER, 1)
    assert state(app) == (1, 1, 1, 1)


def test_outbox_row_is_a_valid_envelope_for_the_relay(app, add_product):
    from app.messaging.contract import PUBLISHED, validate_data

    add_product(1)
    with app.app_context():
        services.like(SHOPPER, 1)
        row = db.session.query(OutboxEvent).one()
        envelope = json.loads(row.payload)
    assert row.event_id == envelope["id"]
    assert row.published_at is None and row.attempts == 0
    assert row.available_at == row.created_at
    validate_data(PUBLISHED, envelope["type"], envelope["version"], envelope["data"])
