"""Write events to the outbox inside the caller's transaction and wake the relay after commit."""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.db import transaction
from eventbus import wakeup
from opentelemetry import propagate

from messaging import contract
from messaging.models import OutboxEvent

logger = logging.getLogger(__name__)


def enqueue(event_type: str, data: dict, version: int = 1) -> OutboxEvent:
    """Save one outbox row for the event; call inside the transaction that makes the change."""
    envelope = contract.envelope(event_type, data, version=version)
    carrier: dict[str, str] = {}
    propagate.inject(carrier)  # traceparent/tracestate of the current request span
    row = OutboxEvent.objects.create(
        event_id=envelope["id"],
        event_type=event_type,
        payload=contract.dumps(envelope),
        headers=json.dumps(carrier),
    )
    _wake_after_commit()
    logger.info(
        "outbox event written",
        extra={"event_id": row.event_id, "event_type": event_type},
    )
    return row


def _wake_after_commit() -> None:
    """Wake the relay once when the current transaction commits, however many rows it wrote."""
    connection = transaction.get_connection()
    # run_on_commit holds (savepoint ids, callable, robust) per callback; a callback registered in
    # a savepoint that rolled back is gone from it, so the next row registers again.
    if not any(entry[1] is wake_relay for entry in connection.run_on_commit):
        transaction.on_commit(wake_relay)


def wake_relay() -> None:
    """Send one UDP datagram to the relay (eventbus.wakeup); never raises."""
    wakeup.wake(settings.OUTBOX_WAKEUP_ADDR)
