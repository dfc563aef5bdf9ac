"""Inspect, redrive or purge admin's dead-letter queue (admin.dlq)."""

from __future__ import annotations

import json

import pika
import pika.exceptions
from django.core.management.base import BaseCommand, CommandError

from messaging import topology

# Broker-set dead-lettering headers: dropped on redrive so the message starts afresh.
DEATH_HEADERS = (
    "x-death",
    "x-first-death-reason",
    "x-first-death-queue",
    "x-first-death-exchange",
    "x-last-death-reason",
    "x-last-death-queue",
    "x-last-death-exchange",
    "x-delivery-count",
)


def original_routing_key(method, properties) -> str:
    """Return the routing key the message had before it was dead-lettered."""
    deaths = (properties.headers or {}).get("x-death") or []
    keys = (deaths[0].get("routing-keys") or []) if deaths else []
    if keys:
        key = keys[0]
        return key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key)
    return method.routing_key or properties.type or ""


def describe(method, properties, body: bytes) -> dict:
    """Summarise one dead-lettered message for the operator."""
    headers = properties.headers or {}
    deaths = headers.get("x-death") or []
    first = deaths[0] if deaths else {}

    def text(value):
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else value

    return {
        "message_id": properties.message_id,
        "type": properties.type,
        "routing_key": method.routing_key,
        "reason": text(first.get("reason") or headers.get("x-first-death-reason")),
        "queue": text(first.get("queue") or headers.get("x-first-death-queue")),
        "count": first.get("count"),
        "body": body[:500].decode("utf-8", "replace"),
    }


def redrive_properties(properties: pika.BasicProperties) -> pika.BasicProperties:
    """Copy a message's properties for re-publishing, without the broker's death headers."""
    headers = {k: v for k, v in (properties.headers or {}).items() if k not in DEATH_HEADERS}
    headers["x-redriven"] = int(headers.get("x-redriven", 0)) + 1
    return pika.BasicProperties(
        content_type=properties.content_type,
        content_encoding=properties.content_encoding,
        headers=headers,
        delivery_mode=2,
        priority=properties.priority,
        correlation_id=properties.correlation_id,
        message_id=properties.message_id,
        timestamp=properties.timestamp,
        type=properties.type,
        app_id=properties.app_id,
    )


class Command(BaseCommand):
    """`python manage.py dlq list|redrive|purge [--limit N]`"""

    help = "List (non-destructively), redrive to the admin queue, or purge admin.dlq."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["list", "redrive", "purge"])
        parser.add_argument("--limit", type=int, default=None, help="at most N messages")

    def handle(self, *args, **options):
        limit = options["limit"]
        if limit is not None and limit < 1:
            raise CommandError("--limit must be >= 1")
        try:
            connection = pika.BlockingConnection(topology.connection_parameters(client_name="admin-dlq"))
        except pika.exceptions.AMQPError as exc:
            raise CommandError(f"cannot connect to the broker: {exc!r}") from exc
        try:
            channel = connection.channel()
            topology.declare_consumer(channel)
            waiting = channel.queue_declare(
                queue=topology.DEAD_LETTER_QUEUE,
                durable=True,
                arguments=topology.DEAD_LETTER_QUEUE_ARGUMENTS,
                passive=True,
            ).method.message_count
            # Bound the work by what is there now: a redriven poison message may come straight back.
            budget = waiting if limit is None else min(limit, waiting)
            action = getattr(self, f"_{options['action']}")
            action(channel, budget, limit)
        finally:
            if connection.is_open:
                connection.close()

    def _list(self, channel, budget: int, _limit) -> None:
        seen = 0
        last_tag = None
        for _ in range(budget):
            method, properties, body = channel.basic_get(topology.DEAD_LETTER_QUEUE, auto_ack=False)
            if method is None:
                break
            last_tag = method.delivery_tag
            seen += 1
            self.stdout.write(json.dumps(describe(method, properties, body), default=str))
        if last_tag is not None:
            # Held unacked until now so basic_get does not hand the same message out twice.
            channel.basic_nack(delivery_tag=last_tag, multiple=True, requeue=True)
        self.stdout.write(f"{seen} message(s) in {topology.DEAD_LETTER_QUEUE}")

    def _redrive(self, channel, budget: int, _limit) -> None:
        publisher = channel.connection.channel()
        publisher.confirm_delivery()
        moved = 0
        for _ in range(budget):
            method, properties, body = channel.basic_get(topology.DEAD_LETTER_QUEUE, auto_ack=False)
            if method is None:
                break
            try:
                # Through admin.redrive, bound to admin's queue alone: the original exchange
                # (main.events) would also feed every other queue bound to it, and the default
                # exchange would need a write grant that reaches every queue on the broker.
                publisher.basic_publish(
                    exchange=topology.REDRIVE_EXCHANGE,
                    routing_key=original_routing_key(method, properties),
                    body=body,
                    properties=redrive_properties(properties),
                    mandatory=True,
                )
            except (pika.exceptions.UnroutableError, pika.exceptions.NackError) as exc:
                channel.basic_nack(delivery_tag=method.delivery_tag, requeue=True)
                raise CommandError(f"redrive of {properties.message_id} failed: {exc!r}") from exc
            channel.basic_ack(delivery_tag=method.delivery_tag)
            moved += 1
            self.stdout.write(f"redriven {properties.message_id} ({properties.type})")
        self.stdout.write(f"{moved} message(s) redriven to {topology.QUEUE} via {topology.REDRIVE_EXCHANGE}")

    def _purge(self, channel, budget: int, limit) -> None:
        if limit is None:
            purged = channel.queue_purge(topology.DEAD_LETTER_QUEUE).method.message_count
        else:
            purged = 0
            for _ in range(budget):
                method, _properties, _body = channel.basic_get(topology.DEAD_LETTER_QUEUE, auto_ack=False)
                if method is None:
                    break
                channel.basic_ack(delivery_tag=method.delivery_tag)
                purged += 1
        self.stdout.write(f"{purged} message(s) purged from {topology.DEAD_LETTER_QUEUE}")
