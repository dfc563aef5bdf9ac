"""Write events to the outbox inside the caller's transaction and wake the relay after commit."""

from __future__ import annotations

import json
import logging
import socket

from django.conf import settings
from django.db import transaction
from opentelemetry import propagate

from messaging import contract
from messaging.models import OutboxEvent

logger = logging.getLogger(__name__)


def enqueue(event_type: str, data: dict) -> OutboxEvent:
    """Save one outbox row for the event; call inside the transaction that makes the change."""
    envelope = contract.envelope(event_type, data)
    carrier: dict[str, str] = {}
    propagate.inject(carrier)  # traceparent/tracestate of the current request span
    row = OutboxEvent.objects.create(
        event_id=envelope["id"],
        event_type=event_type,
        payload=contract.dumps(envelope),
        headers=json.dumps(carrier),
    )
    transaction.on_commit(wake_relay)
    logger.info(
        "outbox event written",
        extra={"event_id": row.event_id, "event_type": event_type},
    )
    return row


def parse_addr(addr: str) -> tuple[str, int] | None:
    """Split "host:port" into (host, port); None when malformed or empty."""
    host, sep, port = (addr or "").strip().rpartition(":")
    if not sep or not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def wake_relay() -> None:
    """Send one UDP datagram to the relay; never raises (the relay also polls every second)."""
    target = parse_addr(settings.OUTBOX_WAKEUP_ADDR)
    if target is None:
        return
    try:
        family = socket.AF_INET6 if ":" in target[0] else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            sock.sendto(b"outbox", target)
    except OSError as exc:
        logger.debug("outbox wake-up not sent: %s", exc)
