"""Write events to the outbox in the caller's transaction, and nudge the relay after commit."""

import json
import logging

from eventbus import wakeup
from opentelemetry import propagate
from sqlalchemy import insert

from app.extensions import is_mysql
from app.messaging.contract import envelope
from app.models import OutboxEvent, utcnow

logger = logging.getLogger(__name__)

_OUTBOX = OutboxEvent.__table__
_INSERT = insert(_OUTBOX)
# The same INSERT as a driver SQL string for MySQL/MariaDB (PyMySQL, pyformat), as app.services
# sends the rest of the like transaction: no compiling, bind or result processing.
_INSERT_MYSQL = (
    "INSERT INTO outbox (event_id, event_type, payload, headers, created_at, available_at, attempts)"
    " VALUES (%(event_id)s, %(event_type)s, %(payload)s, %(headers)s, %(created_at)s, %(available_at)s,"
    " %(attempts)s)"
)


def outbox_values(event_type, data, version=1):
    """Return the column values of a new outbox row for event_type/data, trace context included."""
    env = envelope(event_type, data, version)
    carrier = {}
    # W3C traceparent/tracestate of the current request span; the relay sends them as AMQP headers.
    propagate.inject(carrier)
    now = utcnow()
    return {
        "event_id": env["id"],
        "event_type": event_type,
        "payload": json.dumps(env, separators=(",", ":")),
        "headers": json.dumps(carrier, separators=(",", ":")),
        "created_at": now,
        "available_at": now,
        "attempts": 0,
    }


def enqueue(session, event_type, data, version=1):
    """Add an outbox row for the event to session (the caller commits it with its change)."""
    row = OutboxEvent(**outbox_values(event_type, data, version))
    session.add(row)
    return row


def enqueue_core(connection, event_type, data):
    """Insert an outbox row on connection inside its open transaction; return the event id."""
    values = outbox_values(event_type, data)
    if is_mysql(connection):
        connection.exec_driver_sql(_INSERT_MYSQL, values)
    else:
        connection.execute(_INSERT, values)
    return values["event_id"]


def wake_relay(addr):
    """Send one UDP datagram to the relay at addr ("host:port"); never raises (eventbus.wakeup)."""
    wakeup.wake(addr)
