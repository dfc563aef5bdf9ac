"""AMQP topology of the main service and connection parameters (README: Topology).

Every declaration is idempotent: the relay and the consumer both declare what they touch at start.
"""

from __future__ import annotations

import ssl

import pika

# Exchange main publishes to; the routing key is the event type.
EVENTS_EXCHANGE = "main.events"
# Exchange admin publishes to; main's queue is bound to it.
SOURCE_EXCHANGE = "admin.events"
QUEUE = "main"
DEAD_LETTER_EXCHANGE = "main.dlx"
DEAD_LETTER_QUEUE = "main.dlq"
# `dlq redrive` republishes here: bound only to main's queue, so main's broker user needs no
# write on the default exchange (which would let it publish into any queue, admin's included).
REDRIVE_EXCHANGE = "main.redrive"
BINDING_KEYS = ("product.#", "catalogue.#")
DELIVERY_LIMIT = 5

QUEUE_ARGUMENTS = {
    "x-queue-type": "quorum",
    "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
    "x-delivery-limit": DELIVERY_LIMIT,
}
DEAD_LETTER_QUEUE_ARGUMENTS = {"x-queue-type": "quorum"}

HEARTBEAT_SECONDS = 30
BLOCKED_CONNECTION_TIMEOUT_SECONDS = 60
CONNECTION_ATTEMPTS = 1  # our own loops retry with backoff; pika's retry would hide the outage


def connection_parameters(
    url: str,
    ca_file: str | None = None,
    *,
    heartbeat: int = HEARTBEAT_SECONDS,
    blocked_connection_timeout: float = BLOCKED_CONNECTION_TIMEOUT_SECONDS,
    client_name: str | None = None,
) -> pika.URLParameters:
    """Build pika parameters from RABBITMQ_URL; amqps:// verifies the certificate and host name."""
    params = pika.URLParameters(url)
    params.heartbeat = heartbeat
    params.blocked_connection_timeout = blocked_connection_timeout
    params.connection_attempts = CONNECTION_ATTEMPTS
    params.socket_timeout = 10
    if client_name:
        params.client_properties = {"connection_name": client_name}
    if url.lower().startswith("amqps://"):
        # create_default_context: CERT_REQUIRED and check_hostname=True; a private CA via RABBITMQ_CA_FILE.
        context = ssl.create_default_context(cafile=ca_file or None)
        params.ssl_options = pika.SSLOptions(context, server_hostname=params.host)
    return params


def declare_publisher(channel) -> None:
    """Declare the exchange main publishes to."""
    channel.exchange_declare(exchange=EVENTS_EXCHANGE, exchange_type="topic", durable=True)


def declare_consumer(channel) -> None:
    """Declare main's queue, its dead-letter and redrive exchanges, the DLQ and the bindings."""
    channel.exchange_declare(exchange=SOURCE_EXCHANGE, exchange_type="topic", durable=True)
    channel.exchange_declare(exchange=DEAD_LETTER_EXCHANGE, exchange_type="fanout", durable=True)
    channel.queue_declare(queue=DEAD_LETTER_QUEUE, durable=True, arguments=DEAD_LETTER_QUEUE_ARGUMENTS)
    channel.queue_bind(queue=DEAD_LETTER_QUEUE, exchange=DEAD_LETTER_EXCHANGE)
    channel.queue_declare(queue=QUEUE, durable=True, arguments=QUEUE_ARGUMENTS)
    for key in BINDING_KEYS:
        channel.queue_bind(queue=QUEUE, exchange=SOURCE_EXCHANGE, routing_key=key)
    channel.exchange_declare(exchange=REDRIVE_EXCHANGE, exchange_type="fanout", durable=True)
    channel.queue_bind(queue=QUEUE, exchange=REDRIVE_EXCHANGE)


def declare_all(channel) -> None:
    """Declare everything main touches, as publisher and as consumer."""
    declare_publisher(channel)
    declare_consumer(channel)
