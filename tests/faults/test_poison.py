"""Poison messages go to the dead-letter queue; the consumers keep processing the good ones."""

from __future__ import annotations

import json
import time
import uuid

from faults.support import (
    assert_converged,
    new_products,
    peek_message_ids,
    publish_raw,
    query,
    queue_depth,
    wait_visible_in_main,
)


def _envelope(event_type: str, data: dict, producer: str) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "type": event_type,
        "version": 1,
        "occurred_at": "2026-11-22T03:00:00.123456Z",
        "producer": producer,
        "data": data,
    }


def _poison(
    exchange: str, producer: str, good_type: str, good_data: dict
) -> list[tuple[str, bytes, str | None, str]]:
    """Return (routing key, body, message_id, type) of messages that can never be applied."""
    unknown = _envelope("product.exploded", good_data, producer)
    bad_data = _envelope(good_type, {**good_data, next(iter(good_data)): "not-a-number"}, producer)
    future = {**_envelope(good_type, good_data, producer), "version": 99}
    no_id = _envelope(good_type, good_data, producer)
    # Two that once made the parser raise something other than InvalidEvent, crash-looping the
    # consumer until the delivery limit dead-lettered its whole prefetch window with them.
    far = {**_envelope(good_type, good_data, producer), "occurred_at": "9999-12-31T23:59:59-01:00"}
    return [
        (good_type, b'{"id": "broken', str(uuid.uuid4()), good_type),  # bad JSON
        ("product.exploded", json.dumps(unknown).encode(), unknown["id"], unknown["type"]),  # unknown type
        (good_type, json.dumps(bad_data).encode(), bad_data["id"], good_type),  # bad data
        (good_type, json.dumps(future).encode(), future["id"], good_type),  # unsupported version
        (good_type, json.dumps(no_id).encode(), None, good_type),  # missing AMQP message_id
        (good_type, json.dumps(far).encode(), far["id"], good_type),  # time out of range in UTC
        (good_type, b"[" * 100_000, str(uuid.uuid4()), good_type),  # nested past the decoder's depth
    ]


def _wait_depth(amqp_url: str, queue: str, minimum: int, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while (depth := queue_depth(amqp_url, queue)) < minimum:
        assert time.monotonic() < deadline, f"{queue} has {depth} messages, expected >= {minimum}"
        time.sleep(0.1)
    return depth


def test_poison_messages_are_dead_lettered_and_the_good_ones_still_flow(fs):
    before = {q: queue_depth(fs.amqp_url, q) for q in ("main.dlq", "admin.dlq")}
    to_main = _poison(
        "admin.events",
        "admin",
        "product.updated",
        {"id": 1, "title": "poison", "image": "https://e.x/p.png", "version": 1},
    )
    to_admin = _poison("main.events", "main", "product.liked", {"product_id": 1, "likes": 1, "seq": 1})
    for key, body, message_id, event_type in to_main:
        publish_raw(
            fs.amqp_url,
            "admin.events",
            key,
            body,
            message_id=message_id,
            event_type=event_type,
            app_id="admin",
        )
    for key, body, message_id, event_type in to_admin:
        publish_raw(
            fs.amqp_url, "main.events", key, body, message_id=message_id, event_type=event_type, app_id="main"
        )

    # Good events published after the poison still get through, in both directions.
    ids = new_products(fs.admin, 2, "after-poison")
    wait_visible_in_main(fs.shop, ids)
    with fs.shop.shopper() as shopper:
        assert fs.shop.like(shopper, ids[0]).status_code == 200
    assert_converged(fs.ep, expected_likes={ids[0]: 1, ids[1]: 0}, timeout=60)

    _wait_depth(fs.amqp_url, "main.dlq", before["main.dlq"] + len(to_main))
    _wait_depth(fs.amqp_url, "admin.dlq", before["admin.dlq"] + len(to_admin))
    for queue, sent in (("main.dlq", to_main), ("admin.dlq", to_admin)):
        dead = peek_message_ids(fs.amqp_url, queue)
        assert len(dead) == before[queue] + len(sent), dead
        assert {m for _, _, m, _ in sent if m} <= set(dead), (queue, dead)
    for name in ("main-consumer", "admin-consumer"):
        assert fs.services.procs[name].running, fs.services.procs[name].log_tail()
    # Nothing is stuck in the work queues: poison is not requeued forever.
    assert queue_depth(fs.amqp_url, "main") == 0
    assert queue_depth(fs.amqp_url, "admin") == 0


def test_poison_inside_a_batch_takes_no_good_event_with_it(fs):
    # The poison arrives in the same prefetch window as good events (admin applies up to 500 per
    # batch): the poison alone is dead-lettered, every good event is applied and acknowledged.
    (pid,) = new_products(fs.admin, 1, "poison-batch")
    wait_visible_in_main(fs.shop, [pid])
    dead_before = set(peek_message_ids(fs.amqp_url, "admin.dlq"))
    depth_before = queue_depth(fs.amqp_url, "admin.dlq")
    fs.services.stop_process("admin-consumer")
    poison = _poison("main.events", "main", "product.liked", {"product_id": pid, "likes": 1, "seq": 1})
    good = []
    for seq in range(1, 61):
        env = _envelope("product.liked", {"product_id": pid, "likes": seq, "seq": 10_000 + seq}, "main")
        good.append(env["id"])
        publish_raw(
            fs.amqp_url,
            "main.events",
            env["type"],
            json.dumps(env).encode(),
            message_id=env["id"],
            event_type=env["type"],
            app_id="main",
        )
        if seq % 8 == 4 and poison:
            key, body, message_id, event_type = poison.pop()
            publish_raw(
                fs.amqp_url,
                "main.events",
                key,
                body,
                message_id=message_id,
                event_type=event_type,
                app_id="main",
            )
    assert not poison and queue_depth(fs.amqp_url, "admin") == 60 + 7

    fs.services.start_process("admin-consumer")
    deadline = time.monotonic() + 60
    while queue_depth(fs.amqp_url, "admin"):
        assert time.monotonic() < deadline, "admin's queue never drained"
        time.sleep(0.1)
    # Drained means delivered (the ready count), not yet committed: wait for the inbox rows.
    marks = ",".join(["%s"] * len(good))
    while True:
        applied = {
            r[0]
            for r in query(
                fs.ep.admin_db, f"SELECT message_id FROM inbox WHERE message_id IN ({marks})", good
            )
        }  # noqa: S608
        if applied == set(good) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert applied == set(good), f"{len(set(good) - applied)} good events not applied"
    new_dead = set(peek_message_ids(fs.amqp_url, "admin.dlq")) - dead_before
    assert not new_dead & set(good), "a good event was dead-lettered with the poison"
    assert queue_depth(fs.amqp_url, "admin.dlq") - depth_before == 7  # the poison, all of it
    assert query(fs.ep.admin_db, "SELECT likes, likes_seq FROM products_product WHERE id=%s", (pid,)) == [
        (60, 10_060)
    ]
    # Back to main's own count, so the next test starts converged.
    query(fs.ep.admin_db, "UPDATE products_product SET likes=0, likes_seq=0 WHERE id=%s", (pid,))
