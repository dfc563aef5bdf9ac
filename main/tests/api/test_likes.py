"""POST and DELETE /flask/api/products/<id>/like."""

import json

import pytest

from app.extensions import db
from app.models import OutboxEvent, Product, ProductLike


def like_url(product_id):
    return f"/flask/api/products/{product_id}/like"


def outbox_rows(app):
    with app.app_context():
        return [
            (row.event_type, json.loads(row.payload), json.loads(row.headers))
            for row in db.session.query(OutboxEvent).order_by(OutboxEvent.id)
        ]


def product_counts(app, product_id):
    with app.app_context():
        product = db.session.get(Product, product_id)
        return product.likes, product.likes_seq


def test_like_counts_and_answers_the_new_total(app, client, add_product):
    add_product(1, likes=4)

    response = client.post(like_url(1))

    assert response.status_code == 200
    assert response.get_json() == {"id": 1, "likes": 5, "liked": True}
    assert product_counts(app, 1) == (5, 1)


def test_first_request_may_be_a_like_and_it_counts(app, client, add_product):
    add_product(1)

    response = client.post(like_url(1))

    assert response.status_code == 200
    assert "shopper=" in response.headers["Set-Cookie"]
    assert client.get("/flask/api/products").get_json()[0]["liked"] is True


def test_like_writes_one_outbox_event_with_the_absolute_count_and_trace_context(app, client, add_product):
    add_product(1, likes=2)

    client.post(like_url(1))

    [(event_type, envelope, headers)] = outbox_rows(app)
    assert event_type == "product.liked"
    assert envelope["type"] == "product.liked"
    assert envelope["producer"] == "main"
    assert envelope["data"] == {"product_id": 1, "likes": 3, "seq": 1}
    assert headers["traceparent"].startswith("00-")


def test_second_like_by_the_same_shopper_is_refused_and_changes_nothing(app, client, add_product):
    add_product(1)
    client.post(like_url(1))

    response = client.post(like_url(1))

    assert response.status_code == 400
    assert response.get_json()["error"] == "already_liked"
    assert product_counts(app, 1) == (1, 1)
    assert [row[0] for row in outbox_rows(app)] == ["product.liked"]


def test_likes_of_different_shoppers_add_up(app, add_product):
    add_product(1)

    results = [app.test_client().post(like_url(1)).get_json()["likes"] for _ in range(3)]

    assert results == [1, 2, 3]
    assert [row[1]["data"]["seq"] for row in outbox_rows(app)] == [1, 2, 3]


@pytest.mark.parametrize("method", ["post", "delete"])
def test_unknown_product_is_404_without_outbox_event(app, client, method):
    response = getattr(client, method)(like_url(42))

    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"
    assert outbox_rows(app) == []


@pytest.mark.parametrize("method", ["post", "delete"])
def test_tombstoned_product_is_404(app, client, add_product, method):
    add_product(1, deleted=True, likes=3)

    response = getattr(client, method)(like_url(1))

    assert response.status_code == 404
    assert product_counts(app, 1) == (3, 0)
    assert outbox_rows(app) == []


def test_unlike_withdraws_the_like_and_writes_product_unliked(app, client, add_product):
    add_product(1, likes=10)
    client.post(like_url(1))

    response = client.delete(like_url(1))

    assert response.status_code == 200
    assert response.get_json() == {"id": 1, "likes": 10, "liked": False}
    assert product_counts(app, 1) == (10, 2)
    assert [(t, e["data"]) for t, e, _ in outbox_rows(app)] == [
        ("product.liked", {"product_id": 1, "likes": 11, "seq": 1}),
        ("product.unliked", {"product_id": 1, "likes": 10, "seq": 2}),
    ]
    assert client.get("/flask/api/products").get_json()[0]["liked"] is False


def test_unlike_without_a_like_is_404_not_liked_and_changes_nothing(app, client, add_product):
    add_product(1, likes=5)

    response = client.delete(like_url(1))

    assert response.status_code == 404
    assert response.get_json()["error"] == "not_liked"
    assert product_counts(app, 1) == (5, 0)
    assert outbox_rows(app) == []


def test_like_again_after_unlike(app, client, add_product):
    add_product(1)
    client.post(like_url(1))
    client.delete(like_url(1))

    response = client.post(like_url(1))

    assert response.get_json() == {"id": 1, "likes": 1, "liked": True}
    assert product_counts(app, 1) == (1, 3)


def test_like_with_a_body_is_refused(app, client, add_product):
    add_product(1)

    response = client.post(like_url(1), json={"likes": 1000})

    assert response.status_code == 400
    assert response.get_json()["error"] == "unexpected_body"
    assert product_counts(app, 1) == (0, 0)


def test_like_with_a_huge_body_is_413(client, add_product):
    add_product(1)

    response = client.post(like_url(1), data=b"x" * (128 * 1024), content_type="application/octet-stream")

    assert response.status_code == 413
    assert response.get_json()["error"] == "request_entity_too_large"


def test_like_with_an_empty_body_is_fine(client, add_product):
    add_product(1)

    response = client.post(like_url(1), data=b"", content_type="application/json")

    assert response.status_code == 200


@pytest.mark.parametrize("segment", ["abc", "-1", "0", "1.5", "99999999999999999999999"])
def test_ids_that_cannot_name_a_product_are_json_404(client, segment):
    response = client.post(like_url(segment))

    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"


def test_like_wakes_the_relay_after_commit_only(app, add_product, monkeypatch):
    import socket

    add_product(1)
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(5)
    app.config["OUTBOX_WAKEUP_ADDR"] = f"127.0.0.1:{receiver.getsockname()[1]}"
    client = app.test_client()
    try:
        assert client.post(like_url(1)).status_code == 200
        assert receiver.recv(64) == b"wake"
        # A refused like commits nothing and so sends nothing.
        assert client.post(like_url(1)).status_code == 400
        receiver.settimeout(0.2)
        with pytest.raises(TimeoutError):
            receiver.recv(64)
    finally:
        receiver.close()


def test_like_rows_are_unique_per_shopper_and_product(app, add_product):
    from sqlalchemy.exc import IntegrityError

    add_product(1)
    with app.app_context():
        db.session.add(ProductLike(shopper_id="s" * 36, product_id=1))
        db.session.commit()
        db.session.add(ProductLike(shopper_id="s" * 36, product_id=1))
        with pytest.raises(IntegrityError):
            db.session.commit()
        db.session.rollback()
