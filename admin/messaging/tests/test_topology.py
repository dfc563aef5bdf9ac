"""Topology declarations and connection parameters."""

from __future__ import annotations

import ssl

from messaging import topology


class RecordingChannel:
    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        return lambda **kw: self.calls.append((name, kw))


def test_consumer_side_matches_the_spec():
    channel = RecordingChannel()
    topology.TOPOLOGY.declare_consumer(channel)
    # main's exchange is main's: looked up, never declared (no configure permission on it).
    assert ("exchange_declare", {"exchange": "main.events", "passive": True}) in channel.calls
    assert (
        "exchange_declare",
        {"exchange": "admin.dlx", "exchange_type": "fanout", "durable": True},
    ) in channel.calls
    assert (
        "queue_declare",
        {
            "queue": "admin.dlq",
            "durable": True,
            "arguments": {"x-queue-type": "quorum", "x-delivery-limit": 1_000_000},
        },
    ) in channel.calls
    assert (
        "queue_bind",
        {"queue": "admin.dlq", "exchange": "admin.dlx"},
    ) in channel.calls
    assert (
        "queue_declare",
        {
            "queue": "admin",
            "durable": True,
            "arguments": {
                "x-queue-type": "quorum",
                "x-dead-letter-exchange": "admin.dlx",
                "x-delivery-limit": 5,
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            },
        },
    ) in channel.calls
    assert (
        "queue_bind",
        {"queue": "admin", "exchange": "main.events", "routing_key": "product.#"},
    ) in channel.calls
    # The DLX and DLQ exist before the queue that dead-letters into them.
    names = [kw.get("exchange") or kw.get("queue") for _, kw in channel.calls]
    assert names.index("admin.dlq") < names.index("admin")


def test_publisher_side_declares_admin_events():
    channel = RecordingChannel()
    topology.TOPOLOGY.declare_all(channel)
    assert channel.calls[0] == (
        "exchange_declare",
        {"exchange": "admin.events", "exchange_type": "topic", "durable": True},
    )


def test_plain_amqp_parameters_have_heartbeat_and_blocked_timeout():
    params = topology.connection_parameters("amqp://u:p@rabbit.example:5673/vh", client_name="x")
    assert (params.host, params.port, params.virtual_host) == (
        "rabbit.example",
        5673,
        "vh",
    )
    assert params.heartbeat == 30
    assert params.blocked_connection_timeout == 60
    assert params.connection_attempts == 1
    assert params.ssl_options is None
    assert params.client_properties == {"connection_name": "x"}


def test_amqps_verifies_certificate_and_host_name():
    params = topology.connection_parameters("amqps://u:p@rabbit.example:5671/%2F")
    context = params.ssl_options.context
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert params.ssl_options.server_hostname == "rabbit.example"


def test_several_broker_addresses_give_one_parameters_each(settings):
    settings.RABBITMQ_URL = "amqp://a:b@rabbit-0:5672/shop, amqp://a:b@rabbit-1:5672/shop"
    brokers = topology.connection_parameters(client_name="admin-relay")
    assert [(p.host, p.virtual_host, p.connection_attempts) for p in brokers] == [
        ("rabbit-0", "shop", 1),
        ("rabbit-1", "shop", 1),
    ]


def test_url_comes_from_settings_by_default(settings):
    settings.RABBITMQ_URL = "amqp://a:b@from-settings:1234/%2F"
    assert topology.connection_parameters().host == "from-settings"
