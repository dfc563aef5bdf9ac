"""Relay and consumer against a real, throwaway RabbitMQ node (started by the fixture)."""

from __future__ import annotations

import json
import threading
import time
from io import StringIO

import pika
import pytest
from django.core.management import call_command
from eventbus.connection import BrokerWait
from eventbus.publisher import AmqpPublisher
from eventbus.runtime import Backoff
from prometheus_client import REGISTRY

from messaging import consumer as consumer_module
from messaging import contract, relay, topology
from messaging.models import InboxEvent, OutboxEvent, WorkerHeartbeat
from messaging.outbox import enqueue
from messaging.tests.fakes import likes_envelope
from products.models import Product

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(180)]


def wait_until(condition, step=lambda: time.sleep(0.05), timeout=30.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        step()


def queue_depth(ch, name) -> int:
    return ch.queue_declare(queue=name, passive=True).method.message_count


def product_updated(i):
    return enqueue(contract.PRODUCT_UPDATED, {"id": i, "title": f"P{i}", "image": "", "version": 1})


def test_relay_publishes_a_batch_with_confirms_and_backs_off_unroutable_rows(rabbit, channel):
    probe = channel.queue_declare(queue="", exclusive=True).method.queue
    channel.queue_bind(queue=probe, exchange="admin.events", routing_key="product.#")
    rows = [product_updated(i) for i in (1, 2, 3)]
    # Nothing is bound for catalogue.* on this node: the broker returns it (mandatory).
    snapshot = enqueue(contract.CATALOGUE_SNAPSHOT, {"ids": [1, 2, 3], "max_id": 3})
    worker = relay.build(params=rabbit.params(), wakeup_addr=None)
    worker.publisher = AmqpPublisher(rabbit.params(), topology.TOPOLOGY)
    worker.publisher.connect()
    try:
        assert worker.run_once() == 4
    finally:
        worker.publisher.close()

    assert OutboxEvent.objects.filter(published_at__isnull=False).count() == 3
    snapshot.refresh_from_db()
    assert snapshot.published_at is None and snapshot.attempts == 1
    assert snapshot.last_error.startswith("returned by broker: 312")

    got = []
    wait_until(lambda: queue_depth(channel, probe) == 3)
    for _ in rows:
        method, props, body = channel.basic_get(probe, auto_ack=True)
        got.append((method.routing_key, props.message_id, props.type, props.delivery_mode, props.app_id))
        assert json.loads(body)["id"] == props.message_id
    assert got == [("product.updated", r.event_id, "product.updated", 2, "admin") for r in rows]


def test_consumer_applies_dedupes_and_dead_letters_then_dlq_command_works(rabbit, channel, settings):
    settings.RABBITMQ_URL = rabbit.url
    product = Product.objects.create(title="Mug", image="https://example.com/m.png")
    consumer = consumer_module.build(params=rabbit.params())
    wait, backoff = BrokerWait(consumer.params), Backoff()

    def step():
        consumer._step(wait, backoff)

    step()
    try:
        assert WorkerHeartbeat.objects.filter(name="admin-consumer").exists()
        dupes_before = REGISTRY.get_sample_value("events_duplicates_total", {"type": "product.liked"}) or 0
        like = likes_envelope(product.pk, likes=4, seq=4)

        def publish(body, message_id, event_type):
            props = pika.BasicProperties(
                message_id=message_id,
                type=event_type,
                content_type="application/json",
                delivery_mode=2,
                headers={"traceparent": "00-" + "c" * 32 + "-" + "d" * 16 + "-01"},
            )
            channel.basic_publish("main.events", event_type, body, props)

        publish(json.dumps(like).encode(), like["id"], "product.liked")
        publish(json.dumps(like).encode(), like["id"], "product.liked")  # redelivery / double send
        publish(b"{not json", "a1b2c3d4-0000-4000-8000-000000000001", "product.liked")
        publish(
            json.dumps(likes_envelope(type="product.exploded")).encode(),
            None,
            "product.exploded",
        )

        def settled():
            product.refresh_from_db()
            dupes = REGISTRY.get_sample_value("events_duplicates_total", {"type": "product.liked"}) or 0
            return product.likes == 4 and dupes == dupes_before + 1 and queue_depth(channel, "admin.dlq") == 2

        wait_until(settled, step=step)
        assert InboxEvent.objects.filter(message_id=like["id"]).count() == 1

        out = StringIO()
        call_command("dlq", "list", stdout=out)
        listed = [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]
        assert sorted(m["type"] for m in listed) == [
            "product.exploded",
            "product.liked",
        ]
        # The consumer dead-letters with its failure headers: the contract's reason codes.
        assert {m["reason"] for m in listed} == {"bad_json", "missing_message_id"}
        wait_until(lambda: queue_depth(channel, "admin.dlq") == 2)  # listing lost nothing

        call_command("dlq", "redrive", "--limit", "1", stdout=StringIO())
        wait_until(lambda: queue_depth(channel, "admin.dlq") == 1)
        # Still poison: the consumer dead-letters it again.
        wait_until(lambda: queue_depth(channel, "admin.dlq") == 2, step=step)

        said = StringIO()
        call_command("dlq", "purge", stdout=StringIO(), stderr=said)
        assert "2 message(s) purged" in said.getvalue()
        assert queue_depth(channel, "admin.dlq") == 0
    finally:
        consumer._disconnect()


@pytest.mark.django_db(transaction=True)
def test_relay_rides_out_a_broker_restart(rabbit, channel):
    # Durable and bound, so it survives the restart and makes the event routable.
    channel.queue_declare(queue="restart-probe", durable=True)
    channel.queue_bind(queue="restart-probe", exchange="admin.events", routing_key="product.#")
    channel.connection.close()
    worker = relay.build(params=rabbit.params(), wakeup_addr=None, poll_seconds=0.1)
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        first = product_updated(6)
        wait_until(lambda: OutboxEvent.objects.get(pk=first.pk).published_at is not None)
        rabbit.stop()
        row = product_updated(7)
        time.sleep(1.0)  # the relay tries, and fails, to publish it meanwhile
        row.refresh_from_db()
        assert row.published_at is None and row.attempts == 0  # unknown fate: still pending, no penalty
        rabbit.start()
        wait_until(lambda: OutboxEvent.objects.get(pk=row.pk).published_at is not None, timeout=60)
    finally:
        worker.stop.request()
        thread.join(30)
    connection = pika.BlockingConnection(rabbit.params())
    try:
        ch = connection.channel()
        ids = []
        while (got := ch.basic_get("restart-probe", auto_ack=True))[0] is not None:
            ids.append(got[1].message_id)
        assert row.event_id in ids
    finally:
        connection.close()
