"""The dead-letter endpoints on a real, throwaway RabbitMQ node, fed by admin's real consumer."""

from __future__ import annotations

import json
import time

import pika
import pytest
from eventbus.connection import BrokerWait
from eventbus.runtime import Backoff

from messaging import consumer as consumer_module
from messaging.tests.fakes import likes_envelope
from operations.models import DeadLetterAudit

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(180)]
BASE = "/api/dead-letters"
POISON_ID = "d1e2a3d4-0000-4000-8000-000000000001"


def wait_until(condition, step=lambda: time.sleep(0.05), timeout=60.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        step()


def depth(ch, name="admin.dlq") -> int:
    return ch.queue_declare(queue=name, passive=True).method.message_count


def publish(ch, body: bytes, message_id: str | None, event_type: str) -> None:
    props = pika.BasicProperties(
        message_id=message_id, type=event_type, content_type="application/json", delivery_mode=2
    )
    ch.basic_publish("main.events", event_type, body, props)


def test_a_dead_letter_is_listed_shown_retried_archived_and_audited(rabbit, channel, settings, staff_api):
    settings.RABBITMQ_URL = rabbit.url
    consumer = consumer_module.build(params=rabbit.params())
    wait, backoff = BrokerWait(consumer.params), Backoff()

    def step():
        consumer._step(wait, backoff)

    step()
    try:
        # Two poison events: a body that is not JSON, and a like count below zero.
        publish(channel, b"{not json", POISON_ID, "product.liked")
        ghost = likes_envelope(1, likes=-5, seq=1)
        publish(channel, json.dumps(ghost).encode(), ghost["id"], "product.liked")
        wait_until(lambda: depth(channel) == 2, step=step)

        assert staff_api.get(f"{BASE}/depth").json() == {"queue": "admin.dlq", "depth": 2}
        overview = staff_api.get(BASE).json()
        assert overview["depth"] == 2 and overview["count"] == 2 and not overview["capped"]
        listed = {r["message_id"]: r for r in overview["results"]}
        assert set(listed) == {POISON_ID, ghost["id"]}
        poison_group = listed[POISON_ID]["fingerprint"]
        assert sum(g["count"] for g in overview["groups"]) == 2
        assert poison_group in {g["fingerprint"] for g in overview["groups"]}
        assert depth(channel) == 2  # looking took nothing away

        shown = staff_api.get(f"{BASE}/{POISON_ID}").json()
        assert shown["body"] == "{not json" and shown["payload"] is None and shown["type"] == "product.liked"

        # Retry the like: still poison, the consumer dead-letters it again, once more retried.
        retried = staff_api.post(f"{BASE}/retry", {"message_id": ghost["id"]}, format="json")
        assert retried.status_code == 200, retried.content
        assert retried.json()["retried"] == 1 and retried.json()["message_ids"] == [ghost["id"]]
        wait_until(lambda: depth(channel) == 1)
        wait_until(lambda: depth(channel) == 2, step=step)
        again = {r["message_id"]: r for r in staff_api.get(BASE).json()["results"]}
        assert again[ghost["id"]]["retried"] == 1

        archived = staff_api.post(
            f"{BASE}/archive",
            {"message_id": POISON_ID, "reason": "not JSON: kept for the producer's team"},
            format="json",
        )
        assert archived.status_code == 200, archived.content
        assert archived.json() == {"archived": 1, "message_ids": [POISON_ID]}
        wait_until(lambda: depth(channel) == 1)  # the other one, read and not acked, is back

        row = DeadLetterAudit.objects.get(action="archive")
        assert (row.message_id, row.event_type, row.fingerprint, row.actor) == (
            POISON_ID,
            "product.liked",
            poison_group,
            "staff",
        )
        assert row.reason == "not JSON: kept for the producer's team" and row.body == "{not json"
        assert isinstance(row.headers, dict)

        discarded = staff_api.post(
            f"{BASE}/discard",
            {"fingerprint": again[ghost["id"]]["fingerprint"], "reason": "no such product"},
            format="json",
        )
        assert discarded.json() == {"discarded": 1, "message_ids": [ghost["id"]]}
        assert depth(channel) == 0
        assert staff_api.post(f"{BASE}/retry", {"message_id": POISON_ID}, format="json").status_code == 404

        audit = staff_api.get(f"{BASE}/audit").json()["results"]
        assert [(r["action"], r["message_id"], r["archived"]) for r in audit] == [
            ("discard", ghost["id"], False),
            ("archive", POISON_ID, True),
            ("retry", ghost["id"], False),
        ]
    finally:
        consumer._disconnect()


def test_a_stopped_broker_is_503_and_the_dead_letters_wait(rabbit, channel, settings, staff_api):
    settings.RABBITMQ_URL = rabbit.url
    publish(channel, b"{}", "m-kept", "product.liked")
    channel.basic_publish("admin.dlx", "product.liked", b"{}", pika.BasicProperties(message_id="m-kept"))
    wait_until(lambda: depth(channel) >= 1)
    channel.connection.close()
    rabbit.stop()
    try:
        started = time.monotonic()
        response = staff_api.post(f"{BASE}/discard", {"message_id": "m-kept", "reason": "x"}, format="json")
        assert response.status_code == 503 and response.json()["error"] == "broker_unavailable"
        assert time.monotonic() - started < 10
        assert not DeadLetterAudit.objects.exists()
    finally:
        rabbit.start()
    back = pika.BlockingConnection(rabbit.params()).channel()
    assert depth(back) >= 1  # still there for the next try
    back.queue_purge("admin.dlq")
    back.connection.close()
