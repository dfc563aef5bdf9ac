"""Changes made through one service's public API reach the other service (real processes, broker, MariaDB)."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from faults.support import AdminApi, Endpoints, Shop, assert_converged, envelope_of, publish_raw, query


@pytest.fixture
def ep(stack, db_accounts) -> Endpoints:
    """Return the URLs and databases of the session stack."""
    return Endpoints(
        stack.admin_url,
        stack.main_url,
        db_accounts["admin"].url,
        db_accounts["main"].url,
    )


@pytest.fixture
def admin(stack):
    """Return an admin API client logged in as the stack's staff user (HTTP Basic)."""
    client = AdminApi(stack.admin_url)
    yield client
    client.close()


@pytest.fixture
def shop(stack) -> Shop:
    """Return main's public API."""
    return Shop(stack.main_url)


def eventually(
    check,
    want=bool,
    timeout: float = 30,
    interval: float = 0.05,
    message: str = "not reached",
):
    """Poll check() until want(value) holds and return the value; fail with the last value after the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if want(value):
            return value
        assert time.monotonic() < deadline, f"{message} within {timeout}s (last: {value!r})"
        time.sleep(interval)


def test_a_product_created_updated_and_deleted_in_admin_follows_in_main(admin, shop):
    created = admin.create("Walnut desk", "https://example.com/desk.png")
    assert (created["version"], created["likes"]) == (1, 0)
    pid = created["id"]

    seen = eventually(lambda: shop.product(pid), message=f"product {pid} not in main")
    assert seen == {
        "id": pid,
        "title": "Walnut desk",
        "image": "https://example.com/desk.png",
        "likes": 0,
        "liked": False,
        "version": 1,
        "likes_seq": 0,
    }

    updated = admin.update(pid, title="Walnut desk XL", image="https://example.com/desk-xl.png")
    assert updated["version"] == 2
    eventually(
        lambda: (
            (p := shop.product(pid))
            and p["title"] == "Walnut desk XL"
            and p["image"] == "https://example.com/desk-xl.png"
        ),
        message="update not in main",
    )

    admin.delete(pid)
    assert admin.get(pid).status_code == 404
    eventually(lambda: shop.product(pid) is None, message="delete not in main")


def test_likes_and_unlikes_in_main_reach_admin_exactly(admin, shop, ep):
    pids = [admin.create(f"Chair {i}", f"https://example.com/chair{i}.png")["id"] for i in range(2)]
    eventually(
        lambda: {p["id"] for p in shop.products()} >= set(pids),
        message="products not in main",
    )

    shoppers = [shop.shopper() for _ in range(5)]
    for shopper in shoppers:
        response = shop.like(shopper, pids[0])
        assert response.status_code == 200, response.text
        assert response.json()["liked"] is True
    assert shop.like(shoppers[0], pids[1]).json() == {
        "id": pids[1],
        "likes": 1,
        "liked": True,
    }
    # The same shopper cannot like twice; the cookie keeps who they are.
    again = shop.like(shoppers[0], pids[0])
    assert again.status_code == 400 and again.json()["error"] == "already_liked"
    unliked = shop.unlike(shoppers[1], pids[0])
    assert unliked.json() == {"id": pids[0], "likes": 4, "liked": False}
    assert [p["liked"] for p in shop.products(shoppers[1]) if p["id"] in pids] == [
        False,
        False,
    ]
    assert [p["liked"] for p in shop.products(shoppers[0]) if p["id"] in pids] == [
        True,
        True,
    ]

    def admin_likes():
        rows = {p["id"]: p["likes"] for p in admin.products()}
        return [rows[pid] for pid in pids]

    eventually(admin_likes, lambda likes: likes == [4, 1], message="admin likes (want [4, 1])")
    assert_converged(ep, expected_likes={pids[0]: 4, pids[1]: 1}, timeout=30)
    for shopper in shoppers:
        shopper.close()


def test_a_like_for_a_product_deleted_meanwhile_is_handled(admin, shop, ep):
    pid = admin.create("Short-lived lamp", "https://example.com/lamp.png")["id"]
    eventually(lambda: shop.product(pid), message="product not in main")
    with shop.shopper() as early, shop.shopper() as late:
        assert shop.like(early, pid).status_code == 200
        admin.delete(pid)
        eventually(lambda: shop.product(pid) is None, message="delete not in main")
        # main knows the product is gone: the like is refused, not recorded.
        refused = shop.like(late, pid)
        assert refused.status_code == 404, refused.text
        assert refused.json()["error"] == "not_found"
        assert shop.unlike(early, pid).status_code == 404

    # The like event for the deleted product reached admin and was acked (not dead-lettered, not stuck).
    (event_id,) = query(
        ep.main_db,
        "SELECT event_id FROM outbox WHERE event_type='product.liked' AND payload LIKE %s",
        (f'%"product_id":{pid},%',),
    )[0]
    eventually(
        lambda: (
            query(
                ep.admin_db,
                "SELECT COUNT(*) FROM inbox WHERE message_id=%s",
                (event_id,),
            )[0][0]
            == 1
        ),
        message="like of a deleted product never consumed by admin",
    )
    # A product created later never inherits the old likes (ids are not reused).
    newer = admin.create("Next lamp", "https://example.com/lamp2.png")
    assert newer["id"] != pid and newer["likes"] == 0
    assert_converged(ep, timeout=30)


def test_an_old_event_cannot_resurrect_a_deleted_product(admin, shop, ep, rabbitmq_url):
    pid = admin.create("Phoenix", "https://example.com/phoenix.png")["id"]
    admin.update(pid, title="Phoenix 2")
    admin.delete(pid)
    eventually(
        lambda: query(ep.main_db, "SELECT deleted, version FROM product WHERE id=%s", (pid,)) == [(1, 3)],
        message="main has no tombstone at version 3",
    )

    # Now the old update (version 2) arrives again, as a redriven dead letter or a copy delayed
    # past the delete would: a new message id, so the inbox lets it through to the version rule.
    ((old_id,),) = query(
        ep.admin_db,
        "SELECT event_id FROM outbox WHERE event_type='product.updated' AND payload LIKE %s",
        (f'%"id":{pid},%',),
    )
    envelope, headers = envelope_of(ep.admin_db, old_id)
    envelope["id"] = str(uuid.uuid4())
    publish_raw(
        rabbitmq_url,
        "admin.events",
        envelope["type"],
        json.dumps(envelope).encode(),
        message_id=envelope["id"],
        event_type=envelope["type"],
        app_id="admin",
        headers=headers,
    )
    eventually(
        lambda: (
            query(ep.main_db, "SELECT COUNT(*) FROM inbox WHERE message_id=%s", (envelope["id"],))[0][0] == 1
        ),
        message="main never consumed the old update",
    )
    assert query(ep.main_db, "SELECT deleted, version FROM product WHERE id=%s", (pid,)) == [(1, 3)]
    assert shop.product(pid) is None


def test_the_trace_context_of_the_request_travels_with_the_event(admin, ep):
    pid = admin.create("Traced", "https://example.com/t.png")["id"]
    ((headers,),) = query(
        ep.admin_db,
        "SELECT headers FROM outbox WHERE event_type='product.created' AND payload LIKE %s",
        (f'%"id":{pid},%',),
    )
    assert '"traceparent":"00-' in headers.replace(" ", ""), headers
