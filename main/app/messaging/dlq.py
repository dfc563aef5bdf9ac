"""Inspect and handle dead-lettered messages of main.dlq: list, redrive, purge."""

from __future__ import annotations

import json
import logging

import click
import pika
import pika.exceptions

from app.messaging import topology

logger = logging.getLogger(__name__)

# Headers the broker adds while dead-lettering; a redriven message starts afresh without them.
_DEATH_HEADERS = frozenset(
    {
        "x-death",
        "x-delivery-count",
        "x-first-death-exchange",
        "x-first-death-queue",
        "x-first-death-reason",
        "x-last-death-exchange",
        "x-last-death-queue",
        "x-last-death-reason",
    }
)


def _text(value) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return None if value is None else str(value)


def original_routing_key(method, properties) -> str:
    """Return the routing key the message had before it was dead-lettered."""
    deaths = (properties.headers or {}).get("x-death") or []
    if deaths:
        keys = deaths[0].get("routing-keys") or []
        if keys:
            return _text(keys[0])
    return method.routing_key or properties.type or ""


def describe(method, properties, body: bytes) -> dict:
    """Summarise one dead-lettered message for `dlq list`."""
    headers = properties.headers or {}
    deaths = headers.get("x-death") or []
    first = deaths[0] if deaths else {}
    return {
        "message_id": properties.message_id,
        "type": properties.type,
        "routing_key": original_routing_key(method, properties),
        "reason": _text(first.get("reason")) or _text(headers.get("x-first-death-reason")),
        "queue": _text(first.get("queue")),
        "deaths": int(first.get("count", 0) or 0),
        "body": body.decode("utf-8", "replace")[:2000],
    }


def redrive_properties(properties) -> pika.BasicProperties:
    """Copy a message's properties without the dead-letter bookkeeping headers."""
    headers = {k: v for k, v in (properties.headers or {}).items() if k not in _DEATH_HEADERS}
    return pika.BasicProperties(
        content_type=properties.content_type,
        content_encoding=properties.content_encoding,
        headers=headers,
        delivery_mode=2,
        priority=properties.priority,
        correlation_id=properties.correlation_id,
        reply_to=properties.reply_to,
        expiration=properties.expiration,
        message_id=properties.message_id,
        timestamp=properties.timestamp,
        type=properties.type,
        user_id=None,  # the broker checks user_id against the publishing user
        app_id=properties.app_id,
    )


def handle_dlq(channel, action: str, limit: int, echo=click.echo) -> int:
    """Run action (list|redrive|purge) on up to limit messages of main.dlq; return how many."""
    taken = []
    done = 0
    try:
        if action == "redrive":
            channel.confirm_delivery()
        while done < limit:
            method, properties, body = channel.basic_get(topology.DEAD_LETTER_QUEUE, auto_ack=False)
            if method is None:
                break
            if action == "list":
                taken.append(method.delivery_tag)
                echo(json.dumps(describe(method, properties, body)))
            elif action == "redrive":
                key = original_routing_key(method, properties)
                try:
                    # Through main.redrive, bound to main's queue alone: admin.events would feed
                    # every queue bound to it (and main may not write there), the default exchange
                    # would need a write grant that reaches every queue on the broker.
                    channel.basic_publish(
                        topology.REDRIVE_EXCHANGE,
                        key,
                        body,
                        redrive_properties(properties),
                        mandatory=True,
                    )
                except (pika.exceptions.UnroutableError, pika.exceptions.NackError):
                    channel.basic_nack(method.delivery_tag, requeue=True)
                    logger.error(
                        "redrive of %s to %s/%s was not accepted; left in the DLQ",
                        properties.message_id,
                        topology.REDRIVE_EXCHANGE,
                        key,
                    )
                    break
                # Acked only after the broker confirmed the republished copy.
                channel.basic_ack(method.delivery_tag)
                logger.info(
                    "redrove dead-lettered message",
                    extra={
                        "event_id": properties.message_id,
                        "event_type": properties.type,
                    },
                )
            elif action == "purge":
                channel.basic_ack(method.delivery_tag)
            else:
                raise ValueError(f"unknown action {action!r}")
            done += 1
    finally:
        if taken:
            # list only looks: give every message back, in one go.
            channel.basic_nack(taken[-1], multiple=True, requeue=True)
    return done


def dlq_command(app, action: str, limit: int) -> int:
    """Connect, declare the topology and run a dead-letter action; print a summary."""
    params = topology.connection_parameters(
        app.config["RABBITMQ_URL"],
        app.config.get("RABBITMQ_CA_FILE"),
        client_name="main-dlq",
    )
    conn = pika.BlockingConnection(params)
    try:
        channel = conn.channel()
        topology.declare_consumer(channel)
        count = handle_dlq(channel, action, limit)
    finally:
        if conn.is_open:
            conn.close()
    verb = {"list": "listed", "redrive": "redrove", "purge": "purged"}[action]
    click.echo(f"{verb} {count} message(s) of {topology.DEAD_LETTER_QUEUE}", err=True)
    return count
