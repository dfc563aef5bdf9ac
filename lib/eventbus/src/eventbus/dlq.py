"""The dead-letter tool: list, redrive or purge a service's dead-letter queue (README: Operations).

Every action is bounded by the queue's depth when it starts: a redriven message that is still
poison comes straight back, and must not be redriven again and again within one command.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence

import pika
import pika.connection
import pika.exceptions

from eventbus import failures
from eventbus.connection import Brokers
from eventbus.topology import Topology

logger = logging.getLogger(__name__)

ACTIONS = ("list", "redrive", "purge")
# Headers the broker adds while dead-lettering; a redriven message starts afresh without them.
DEATH_HEADERS = frozenset(
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


class DeadLetterError(Exception):
    """A redrive the broker did not accept; the message stays in the dead-letter queue."""


def _text(value) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return None if value is None else str(value)


def original_routing_key(method, properties) -> str:
    """Return the routing key the message had before it was dead-lettered."""
    deaths = (properties.headers or {}).get("x-death") or []
    keys = (deaths[0].get("routing-keys") or []) if deaths else []
    if keys:
        return _text(keys[0])
    return method.routing_key or properties.type or ""


def describe(method, properties, body: bytes) -> dict:
    """Summarise one dead-lettered message for the operator."""
    headers = properties.headers or {}
    failure = failures.read(headers)
    return {
        "message_id": properties.message_id,
        "type": properties.type,
        "routing_key": original_routing_key(method, properties),
        **failure.as_dict(),
        "queue": failure.queue,
        "redriven": failures.count_of(headers.get("x-redriven")),
        "body": body.decode("utf-8", "replace")[:2000],
    }


def redrive_properties(properties) -> pika.BasicProperties:
    """Copy a message's properties without the broker's death headers, counting the redrives."""
    headers = {k: v for k, v in (properties.headers or {}).items() if k not in DEATH_HEADERS}
    headers["x-redriven"] = failures.count_of(headers.get("x-redriven")) + 1
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


def run(
    channel,
    topology: Topology,
    action: str,
    limit: int | None = None,
    *,
    out: Callable[[str], None] = print,
) -> int:
    """Run list|redrive|purge on at most min(limit, depth at start) messages; return how many.

    `list` prints one JSON line per message and gives every message back; `redrive` republishes
    through the service's redrive exchange with confirms and acknowledges each dead letter only
    after the broker confirmed its copy; `purge` drops them.
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    queue = topology.dead_letter_queue
    depth = channel.queue_declare(queue=queue, passive=True).method.message_count
    budget = depth if limit is None else min(limit, depth)
    if action == "purge" and limit is None:
        return channel.queue_purge(queue).method.message_count
    if action == "redrive":
        channel.confirm_delivery()
    done, last_listed = 0, None
    try:
        while done < budget:
            method, properties, body = channel.basic_get(queue, auto_ack=False)
            if method is None:
                break
            if action == "list":
                # Held unacked until the end, so basic_get never hands the same message out twice.
                last_listed = method.delivery_tag
                out(json.dumps(describe(method, properties, body), default=str))
            elif action == "redrive":
                _redrive_one(channel, topology, method, properties, body)
                out(f"redriven {properties.message_id} ({properties.type})")
            else:
                channel.basic_ack(method.delivery_tag)
            done += 1
    finally:
        if last_listed is not None:
            channel.basic_nack(last_listed, multiple=True, requeue=True)
    return done


def _redrive_one(channel, topology: Topology, method, properties, body: bytes) -> None:
    key = original_routing_key(method, properties)
    try:
        # Through <service>.redrive, bound to the service's queue alone: the original exchange would
        # also feed every other queue bound to it.
        channel.basic_publish(
            topology.redrive_exchange, key, body, redrive_properties(properties), mandatory=True
        )
    except (pika.exceptions.UnroutableError, pika.exceptions.NackError) as exc:
        channel.basic_nack(method.delivery_tag, requeue=True)
        raise DeadLetterError(
            f"redrive of {properties.message_id} to {topology.redrive_exchange}/{key} was not accepted "
            f"({exc!r}); it stays in {topology.dead_letter_queue}"
        ) from exc
    channel.basic_ack(method.delivery_tag)
    logger.info(
        "redrove a dead-lettered message",
        extra={"event_id": properties.message_id, "event_type": properties.type},
    )


SUMMARY = {
    "list": "{n} message(s) listed from {dlq}",
    "redrive": "{n} message(s) redriven to {queue} via {redrive}",
    "purge": "{n} message(s) purged from {dlq}",
}


def command(
    params: pika.connection.Parameters | Sequence[pika.connection.Parameters],
    topology: Topology,
    action: str,
    limit: int | None = None,
    *,
    out: Callable[[str], None] = print,
    say: Callable[[str], None] = print,
) -> int:
    """Connect, declare the consumer side and run an action; say a one-line summary; return the count."""
    connection = pika.BlockingConnection(Brokers.of(params).order())
    try:
        channel = connection.channel()
        topology.declare_consumer(channel)
        count = run(channel, topology, action, limit, out=out)
    finally:
        if connection.is_open:
            connection.close()
    say(
        SUMMARY[action].format(
            n=count,
            dlq=topology.dead_letter_queue,
            queue=topology.queue,
            redrive=topology.redrive_exchange,
        )
    )
    return count
