"""The dead-letter tool: list gives back, redrive confirms and is bounded, purge drops."""

import json
import socket
import uuid
from types import SimpleNamespace

import pika
import pytest
from eventbus import dlq
from eventbus.topology import Topology

TOPO = Topology(service="main", source_exchange="admin.events", binding_keys=("product.#",))


def dead_letter(tag, message_id="m1", key="product.created"):
    headers = {
        "x-death": [{"reason": "rejected", "queue": "main", "count": 1, "routing-keys": [key]}],
        "x-first-death-reason": "rejected",
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    }
    method = SimpleNamespace(delivery_tag=tag, routing_key="")
    properties = pika.BasicProperties(message_id=message_id, type="product.created", headers=headers)
    return method, properties, json.dumps({"id": message_id}).encode()


class FakeDlqChannel:
    """A dead-letter queue whose redriven messages come straight back (still poison)."""

    def __init__(self, messages, comes_back=False):
        self.messages, self.comes_back, self.calls = list(messages), comes_back, []
        self._tags = 100

    def queue_declare(self, queue, passive=False):
        assert queue == "main.dlq" and passive
        return SimpleNamespace(method=SimpleNamespace(message_count=len(self.messages)))

    def queue_purge(self, queue):
        count, self.messages = len(self.messages), []
        return SimpleNamespace(method=SimpleNamespace(message_count=count))

    def confirm_delivery(self):
        self.calls.append(("confirm",))

    def basic_get(self, queue, auto_ack=False):
        assert queue == "main.dlq" and auto_ack is False
        return self.messages.pop(0) if self.messages else (None, None, None)

    def basic_publish(self, exchange, routing_key, body, properties, mandatory=False):
        self.calls.append(("publish", exchange, routing_key, body, properties, mandatory))
        if self.comes_back:
            self._tags += 1
            self.messages.append(dead_letter(self._tags, properties.message_id, routing_key))

    def basic_ack(self, tag):
        self.calls.append(("ack", tag))

    def basic_nack(self, tag, multiple=False, requeue=True):
        self.calls.append(("nack", tag, multiple, requeue))


def test_list_prints_and_gives_every_message_back():
    channel = FakeDlqChannel([dead_letter(1), dead_letter(2, "m2")])
    lines = []
    assert dlq.run(channel, TOPO, "list", out=lines.append) == 2
    listed = [json.loads(line) for line in lines]
    assert [m["message_id"] for m in listed] == ["m1", "m2"]
    assert listed[0]["reason"] == "rejected" and listed[0]["routing_key"] == "product.created"
    assert channel.calls == [("nack", 2, True, True)]


def test_redrive_republishes_with_the_original_key_then_acks():
    channel = FakeDlqChannel([dead_letter(1, key="product.updated")])
    assert dlq.run(channel, TOPO, "redrive", out=lambda line: None) == 1
    confirm, publish, ack = channel.calls
    assert confirm == ("confirm",)
    _, exchange, key, body, props, mandatory = publish
    assert (exchange, key, body, mandatory) == ("main.redrive", "product.updated", b'{"id": "m1"}', True)
    assert props.message_id == "m1" and props.delivery_mode == 2
    assert props.headers == {
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "x-redriven": 1,
    }
    assert ack == ("ack", 1)


def test_a_redrive_is_bounded_by_the_depth_at_the_start():
    # Still-poison messages come straight back: they are redriven once each, not until --limit.
    channel = FakeDlqChannel([dead_letter(1), dead_letter(2, "m2")], comes_back=True)
    assert dlq.run(channel, TOPO, "redrive", limit=100, out=lambda line: None) == 2
    assert len(channel.messages) == 2


def test_purge_with_and_without_a_limit():
    channel = FakeDlqChannel([dead_letter(1), dead_letter(2), dead_letter(3)])
    assert dlq.run(channel, TOPO, "purge", limit=2) == 2
    assert channel.calls == [("ack", 1), ("ack", 2)]
    assert dlq.run(channel, TOPO, "purge") == 1 and channel.messages == []


def test_an_unknown_action_is_refused():
    with pytest.raises(ValueError):
        dlq.run(FakeDlqChannel([]), TOPO, "explode")


def test_the_command_against_a_real_broker(rabbit):
    topo = Topology(
        service=f"dlq{uuid.uuid4().hex[:6]}", source_exchange="dlq-src.events", binding_keys=("x.#",)
    )
    params = rabbit.params()
    with pika.BlockingConnection(params) as conn:
        channel = conn.channel()
        channel.exchange_declare(exchange=topo.source_exchange, exchange_type="topic", durable=True)
        topo.declare_consumer(channel)
        channel.confirm_delivery()
        for i in range(3):
            props = pika.BasicProperties(message_id=f"m{i}", type="x.happened", delivery_mode=2)
            channel.basic_publish(topo.dead_letter_exchange, "x.happened", b"{}", props)
    said, out = [], []
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        down = pika.ConnectionParameters("127.0.0.1", s.getsockname()[1], connection_attempts=1)
    # Several addresses, one of them down: the tool goes on to the next.
    assert dlq.command([down, params], topo, "list", out=out.append, say=said.append) == 3
    assert dlq.command(params, topo, "redrive", limit=2, out=out.append, say=said.append) == 2
    assert dlq.command(params, topo, "purge", out=out.append, say=said.append) == 1
    assert said == [
        f"3 message(s) listed from {topo.dead_letter_queue}",
        f"2 message(s) redriven to {topo.queue} via {topo.redrive_exchange}",
        f"1 message(s) purged from {topo.dead_letter_queue}",
    ]
    with pika.BlockingConnection(params) as conn:
        channel = conn.channel()
        assert channel.queue_declare(topo.queue, passive=True).method.message_count == 2  # the redriven
        channel.queue_delete(topo.queue)
        channel.queue_delete(topo.dead_letter_queue)
