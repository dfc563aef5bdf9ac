"""AMQP topology of the admin service and its connection parameters (README: Topology).

Every declaration is idempotent: the relay and the consumer both declare what admin touches at start.
The queue arguments must be byte-for-byte what main declares for its twin, or the broker refuses
the second declaration with PRECONDITION_FAILED.
"""

from __future__ import annotations

import os
import ssl

import pika

# Exchange admin publishes to; the routing key is the event type.
EVENTS_EXCHANGE = "admin.events"
# Exchange main publishes to; admin's queue is bound to it.
SOURCE_EXCHANGE = "main.events"
QUEUE = "admin"
DEAD_LETTER_EXCHANGE = "admin.dlx"
DEAD_LETTER_QUEUE = "admin.dlq"
# `dlq redrive` republishes here: bound only to admin's queue, so admin's broker user needs no
# write on the default exchange (which would let it publish into any queue, main's included).
REDRIVE_EXCHANGE = "admin.redrive"
BINDING_KEYS = ("product.#",)
DELIVERY_LIMIT = 5

QUEUE_ARGUMENTS = {
    "x-queue-type": "quorum",
    "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
    "x-delivery-limit": DELIVERY_LIMIT,
}
DEAD_LETTER_QUEUE_ARGUMENTS = {"x-queue-type": "quorum"}

HEARTBEAT_SECONDS = 30
BLOCKED_CONNECTION_TIMEOUT_SECONDS = 60
DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


def setting(name: str, default=None):
    """Return a Django setting when settings are configured, else the environment variable."""
    from django.conf import settings

    if settings.configured and hasattr(settings, name):
        value = getattr(settings, name)
        if value not in (None, ""):
            return value
    value = os.environ.get(name, "")
    return value if value.strip() else default


def connection_parameters(
    url: str | None = None,
    ca_file: str | None = None,
    *,
    client_name: str | None = None,
) -> pika.URLParameters:
    """Build pika parameters from RABBITMQ_URL; amqps:// verifies the certificate and host name."""
    url = url or setting("RABBITMQ_URL", DEFAULT_URL)
    ca_file = ca_file or setting("RABBITMQ_CA_FILE")
    params = pika.URLParameters(url)
    params.heartbeat = HEARTBEAT_SECONDS
    params.blocked_connection_timeout = BLOCKED_CONNECTION_TIMEOUT_SECONDS
    # Our own loops reconnect with backoff; pika's retries would hide an outage from them.
    params.connection_attempts = 1
    params.socket_timeout = 10
    if client_name:
        params.client_properties = {"connection_name": client_name}
    if url.lower().startswith("amqps://"):
        # create_default_context: CERT_REQUIRED and check_hostname=True; a private CA via the file.
        context = ssl.create_default_context(cafile=ca_file or None)
        params.ssl_options = pika.SSLOptions(context, server_hostname=params.host)
    return params


def declare_publisher(channel) -> None:
    """Declare the exchange admin publishes to."""
    channel.exchange_declare(exchange=EVENTS_EXCHANGE, exchange_type="topic", durable=True)


def declare_consumer(channel) -> None:
    """Declare admin's queue, its dead-letter and redrive exchanges, the DLQ and the bindings."""
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
    """Declare everything admin touches, as publisher and as consumer."""
    declare_publisher(channel)
    declare_consumer(channel)
