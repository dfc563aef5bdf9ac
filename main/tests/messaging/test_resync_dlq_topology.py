"""resync-likes and the topology/connection settings (the dead-letter tool is eventbus's)."""

import json
import ssl

import certifi
import pytest
from sqlalchemy import select

from app.extensions import db
from app.messaging import topology
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


def test_a_forced_resync_sends_version_2_with_force(app, add_product, runner):
    add_product(4, likes=1)

    result = runner.invoke(args=["resync-likes", "--force"])

    assert result.exit_code == 0, result.output
    assert "enqueued 1 product.likes_counted events (forced)" in result.output
    with app.app_context():
        (payload,) = db.session.execute(select(OutboxEvent.payload)).scalars().all()
    envelope = json.loads(payload)
    assert (envelope["version"], envelope["data"]) == (
        2,
        {"product_id": 4, "likes": 1, "seq": 0, "force": True},
    )


def test_topology_matches_the_spec():
    calls = []

    class Recorder:
        def __getattr__(self, name):
            return lambda *a, **kw: calls.append((name, kw))

    topology.TOPOLOGY.declare_all(Recorder())

    assert (
        "exchange_declare",
        {"exchange": "main.events", "exchange_type": "topic", "durable": True},
    ) in calls
    # admin's exchange is admin's: looked up, never declared (no configure permission on it).
    assert ("exchange_declare", {"exchange": "admin.events", "passive": True}) in calls
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
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            },
        },
    ) in calls
    assert (
        "queue_declare",
        {
            "queue": "main.dlq",
            "durable": True,
            "arguments": {"x-queue-type": "quorum", "x-delivery-limit": 1_000_000},
        },
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
    assert params.heartbeat == 30
    assert params.blocked_connection_timeout == 60
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
