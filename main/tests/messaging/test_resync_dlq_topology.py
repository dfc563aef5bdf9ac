"""resync-likes, the dead-letter helpers and the topology/connection settings."""

import json
import ssl
from types import SimpleNamespace

import certifi
import pika
import pytest
from sqlalchemy import select

from app.extensions import db
from app.messaging import dlq, topology
from app.messaging.resync import resync_likes
from app.models import OutboxEvent


def test_resync_enqueues_likes_counted_for_live_products_only(app, add_product):
    add_product(1, likes=3)
    add_product(2, likes=0)
    add_product(3, likes=9, deleted=True)
    with app.app_context():
        from app.models import Product

        db.session.get(Product, 1).likes_seq = 7
        db.session.commit()

    assert resync_likes(app) == 2

    with app.app_context():
        rows = db.session.execute(select(OutboxEvent).order_by(OutboxEvent.id)).scalars().all()
        envelopes = [json.loads(row.payload) for row in rows]
    assert [row.event_type for row in rows] == ["product.likes_counted"] * 2
    assert [e["data"] for e in envelopes] == [
        {"product_id": 1, "likes": 3, "seq": 7},
        {"product_id": 2, "likes": 0, "seq": 0},
    ]
    assert all(
        e["producer"] == "main" and e["id"] == r.event_id for e, r in zip(envelopes, rows, strict=True)
    )


def test_resync_with_no_products_enqueues_nothing(app):
    assert resync_likes(app) == 0


def test_resync_command_runs_through_the_cli(app, add_product, runner):
    add_product(4, likes=1)

    result = runner.invoke(args=["resync-likes"])

    assert result.exit_code == 0, result.output
    with app.app_context():
        assert db.session.execute(select(OutboxEvent.event_type)).scalars().all() == ["product.likes_counted"]


def dead_letter(tag, message_id="m1", key="product.created"):
    method = SimpleNamespace(delivery_tag=tag, routing_key=key)
    props = pika.BasicProperties(
        message_id=message_id,
        type="product.created",
        content_type="application/json",
        app_id="admin",
        timestamp=123,
        headers={
            "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "x-death": [
                {
                    "reason": "rejected",
                    "queue": "main",
                    "count": 1,
                    "routing-keys": [key],
                }
            ],
            "x-first-death-reason": "rejected",
        },
    )
    return method, props, b'{"id": "m1"}'


class FakeDlqChannel:
    def __init__(self, messages):
        self.messages = list(messages)
        self.calls = []

    def confirm_delivery(self):
        self.calls.append(("confirm",))

    def basic_get(self, queue, auto_ack=False):
        assert queue == topology.DEAD_LETTER_QUEUE and auto_ack is False
        return self.messages.pop(0) if self.messages else (None, None, None)

    def basic_publish(self, exchange, routing_key, body, properties, mandatory=False):
        self.calls.append(("publish", exchange, routing_key, body, properties, mandatory))

    def basic_ack(self, tag):
        self.calls.append(("ack", tag))

    def basic_nack(self, tag, multiple=False, requeue=True):
        self.calls.append(("nack", tag, multiple, requeue))


def test_list_prints_and_gives_every_message_back():
    channel = FakeDlqChannel([dead_letter(1), dead_letter(2, "m2")])
    lines = []

    assert dlq.handle_dlq(channel, "list", 10, echo=lines.append) == 2

    assert [json.loads(line)["message_id"] for line in lines] == ["m1", "m2"]
    assert json.loads(lines[0])["reason"] == "rejected"
    assert json.loads(lines[0])["routing_key"] == "product.created"
    assert channel.calls == [("nack", 2, True, True)]


def test_redrive_republishes_with_the_original_key_then_acks():
    channel = FakeDlqChannel([dead_letter(1, key="product.updated")])

    assert dlq.handle_dlq(channel, "redrive", 10) == 1

    confirm, publish, ack = channel.calls
    assert confirm == ("confirm",)
    _, exchange, key, body, props, mandatory = publish
    assert (exchange, key, body, mandatory) == (
        "main.redrive",
        "product.updated",
        b'{"id": "m1"}',
        True,
    )
    assert props.message_id == "m1" and props.type == "product.created" and props.delivery_mode == 2
    assert props.headers == {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
    assert ack == ("ack", 1)


def test_purge_and_limit():
    channel = FakeDlqChannel([dead_letter(1), dead_letter(2), dead_letter(3)])

    assert dlq.handle_dlq(channel, "purge", 2) == 2

    assert channel.calls == [("ack", 1), ("ack", 2)]
    assert len(channel.messages) == 1


def test_topology_matches_the_spec():
    calls = []

    class Recorder:
        def __getattr__(self, name):
            return lambda *a, **kw: calls.append((name, kw))

    topology.declare_all(Recorder())

    assert (
        "exchange_declare",
        {"exchange": "main.events", "exchange_type": "topic", "durable": True},
    ) in calls
    assert (
        "exchange_declare",
        {"exchange": "admin.events", "exchange_type": "topic", "durable": True},
    ) in calls
    assert (
        "exchange_declare",
        {"exchange": "main.dlx", "exchange_type": "fanout", "durable": True},
    ) in calls
    assert (
        "queue_declare",
        {
            "queue": "main",
            "durable": True,
            "arguments": {
                "x-queue-type": "quorum",
                "x-dead-letter-exchange": "main.dlx",
                "x-delivery-limit": 5,
            },
        },
    ) in calls
    assert (
        "queue_declare",
        {"queue": "main.dlq", "durable": True, "arguments": {"x-queue-type": "quorum"}},
    ) in calls
    assert ("queue_bind", {"queue": "main.dlq", "exchange": "main.dlx"}) in calls
    for key in ("product.#", "catalogue.#"):
        assert (
            "queue_bind",
            {"queue": "main", "exchange": "admin.events", "routing_key": key},
        ) in calls
    assert (
        "exchange_declare",
        {"exchange": "main.redrive", "exchange_type": "fanout", "durable": True},
    ) in calls
    assert ("queue_bind", {"queue": "main", "exchange": "main.redrive"}) in calls


def test_plain_amqp_parameters():
    params = topology.connection_parameters("amqp://u:p@rabbit:5673/vh")

    assert (params.host, params.port, params.virtual_host) == ("rabbit", 5673, "vh")
    assert params.heartbeat == topology.HEARTBEAT_SECONDS
    assert params.blocked_connection_timeout == topology.BLOCKED_CONNECTION_TIMEOUT_SECONDS
    assert params.ssl_options is None


def test_amqps_verifies_certificate_and_host_name():
    params = topology.connection_parameters("amqps://u:p@broker.example:5671/%2F")

    context = params.ssl_options.context
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert params.ssl_options.server_hostname == "broker.example"


def test_amqps_uses_the_configured_ca_file(tmp_path):
    missing = tmp_path / "missing-ca.pem"
    with pytest.raises(FileNotFoundError):
        topology.connection_parameters("amqps://u:p@broker.example/%2F", str(missing))
    bundle = certifi.where()  # any real CA bundle will do
    params = topology.connection_parameters("amqps://u:p@broker.example/%2F", bundle)
    assert params.ssl_options.context.get_ca_certs()
