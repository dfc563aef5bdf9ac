"""One topology declaration for both services (README: Topology)."""

import time
import uuid

import pika
import pytest
from eventbus import connection
from eventbus.topology import Topology

MAIN = Topology(service="main", source_exchange="admin.events", binding_keys=("product.#", "catalogue.#"))


class RecordingChannel:
    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        return lambda **kw: self.calls.append((name, kw))


def test_names_follow_the_service():
    assert (MAIN.events_exchange, MAIN.queue, MAIN.dead_letter_exchange, MAIN.dead_letter_queue) == (
        "main.events",
        "main",
        "main.dlx",
        "main.dlq",
    )
    assert MAIN.redrive_exchange == "main.redrive"


def test_the_consumer_side_declares_a_quorum_queue_with_its_dead_letters_and_a_delivery_limit():
    channel = RecordingChannel()
    MAIN.declare_consumer(channel)
    queues = {kw["queue"]: kw["arguments"] for name, kw in channel.calls if name == "queue_declare"}
    assert queues == {
        "main": {
            "x-queue-type": "quorum",
            "x-dead-letter-exchange": "main.dlx",
            "x-delivery-limit": 5,
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        },
        # Explicit on every queue: RabbitMQ 4.x would otherwise apply its default of 20.
        "main.dlq": {"x-queue-type": "quorum", "x-delivery-limit": 1_000_000},
    }
    # The other service's exchange is only looked up: declaring it would need configure, which
    # would also let this service delete it.
    looked_up = [
        kw for name, kw in channel.calls if name == "exchange_declare" and kw["exchange"] == "admin.events"
    ]
    assert looked_up == [{"exchange": "admin.events", "passive": True}]
    bindings = {
        (kw["queue"], kw["exchange"], kw.get("routing_key"))
        for name, kw in channel.calls
        if name == "queue_bind"
    }
    assert bindings == {
        ("main.dlq", "main.dlx", None),
        ("main", "admin.events", "product.#"),
        ("main", "admin.events", "catalogue.#"),
        ("main", "main.redrive", None),
    }


def test_declaring_twice_on_a_real_broker_is_idempotent(rabbit):
    topo = Topology(service="topo-twice", source_exchange="topo-src.events", binding_keys=("a.#",))
    with pika.BlockingConnection(rabbit.params()) as conn:
        channel = conn.channel()
        channel.exchange_declare(exchange=topo.source_exchange, exchange_type="topic", durable=True)
        topo.declare_all(channel)
        topo.declare_all(channel)
        assert channel.queue_declare(topo.queue, passive=True).method.message_count == 0
        channel.queue_delete(topo.queue)
        channel.queue_delete(topo.dead_letter_queue)


def test_a_queue_declared_by_an_earlier_version_is_refused_with_what_to_do(rabbit):
    old = Topology(service="topo-old", source_exchange="topo-old-src.events", binding_keys=("a.#",))
    with pika.BlockingConnection(rabbit.params()) as conn:
        channel = conn.channel()
        channel.exchange_declare(exchange=old.source_exchange, exchange_type="topic", durable=True)
        channel.queue_declare(old.queue, durable=True, arguments={"x-queue-type": "quorum"})
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
            old.declare_consumer(channel)
    assert connection.is_fatal(refused.value)
    assert "README, Upgrading the broker topology" in connection.explain(refused.value)
    with pika.BlockingConnection(rabbit.params()) as conn:
        conn.channel().queue_delete(old.queue)


def test_a_message_returned_past_the_delivery_limit_is_dead_lettered_not_dropped(rabbit):
    # What a consumer crash loop would do to a message (before this core, a poison one took its
    # whole prefetch window with it): each return counts, and past the explicit limit the queue
    # dead-letters it, with the reason in x-death.
    topo = Topology(
        service=f"limit{uuid.uuid4().hex[:6]}", source_exchange="limit-src.events", binding_keys=("a.#",)
    )
    with pika.BlockingConnection(rabbit.params()) as conn:
        channel = conn.channel()
        channel.exchange_declare(exchange=topo.source_exchange, exchange_type="topic", durable=True)
        topo.declare_all(channel)
        channel.confirm_delivery()
        channel.basic_publish(topo.source_exchange, "a.b", b"{}", pika.BasicProperties(message_id="m-1"))
        returns = 0
        deadline = time.monotonic() + 30
        while True:
            method, _, _ = channel.basic_get(topo.queue, auto_ack=False)
            if method is None:
                if channel.queue_declare(topo.dead_letter_queue, passive=True).method.message_count:
                    break
                assert time.monotonic() < deadline, "the message neither came back nor reached the DLQ"
                time.sleep(0.05)
                continue
            channel.basic_reject(method.delivery_tag, requeue=True)
            returns += 1
            assert returns <= topo.delivery_limit + 1, "the delivery limit never applied"
        method, properties, _ = channel.basic_get(topo.dead_letter_queue, auto_ack=True)
        assert properties.message_id == "m-1"
        death = properties.headers["x-death"][0]
        assert (death["reason"], death["queue"]) == ("delivery_limit", topo.queue)
        assert returns == topo.delivery_limit + 1  # the first delivery, then `limit` redeliveries
        for queue in (topo.queue, topo.dead_letter_queue):
            channel.queue_delete(queue)


def test_the_consumer_waits_for_the_other_services_exchange_without_declaring_it(rabbit):
    topo = Topology(
        service=f"wait{uuid.uuid4().hex[:6]}",
        source_exchange=f"src{uuid.uuid4().hex[:6]}.events",
        binding_keys=("a.#",),
    )
    with pika.BlockingConnection(rabbit.params()) as conn:
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as missing:
            topo.declare_consumer(conn.channel())
        assert missing.value.reply_code == 404 and not connection.is_fatal(missing.value)
        channel = conn.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker):
            channel.exchange_declare(exchange=topo.source_exchange, passive=True)  # still not there

        Topology(
            service=topo.source_exchange.removesuffix(".events"), source_exchange="x", binding_keys=()
        ).declare_publisher(conn.channel())
        channel = conn.channel()
        topo.declare_consumer(channel)
        assert channel.queue_declare(topo.queue, passive=True).method.consumer_count == 0
        for queue in (topo.queue, topo.dead_letter_queue):
            channel.queue_delete(queue)
