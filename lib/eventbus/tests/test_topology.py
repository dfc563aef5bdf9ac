"""One topology declaration for both services (README: Topology)."""

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
        topo.declare_all(channel)
        topo.declare_all(channel)
        assert channel.queue_declare(topo.queue, passive=True).method.message_count == 0
        channel.queue_delete(topo.queue)
        channel.queue_delete(topo.dead_letter_queue)


def test_a_queue_declared_by_an_earlier_version_is_refused_with_what_to_do(rabbit):
    old = Topology(service="topo-old", source_exchange="topo-old-src.events", binding_keys=("a.#",))
    with pika.BlockingConnection(rabbit.params()) as conn:
        channel = conn.channel()
        channel.queue_declare(old.queue, durable=True, arguments={"x-queue-type": "quorum"})
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
            old.declare_consumer(channel)
    assert connection.is_fatal(refused.value)
    assert "README, Upgrading the broker topology" in connection.explain(refused.value)
    with pika.BlockingConnection(rabbit.params()) as conn:
        conn.channel().queue_delete(old.queue)
