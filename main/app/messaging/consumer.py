"""main's consumer: eventbus.consumer over SQLAlchemy (README: How an event travels)."""

from __future__ import annotations

import logging

import pymysql
from eventbus import consumer as core
from eventbus.runtime import metrics_port
from sqlalchemy import insert, select
from sqlalchemy.exc import DataError, IntegrityError

from app.extensions import db
from app.messaging import contract, handlers, metrics, topology
from app.messaging.worker import CONSUMER_METRICS_PORT, DATABASE_ERRORS, beat, pika_warnings_only
from app.models import InboxEvent, utcnow

logger = logging.getLogger(__name__)

HEARTBEAT_NAME = "main-consumer"
PREFETCH = 100
BATCH_SIZE = 100

_INBOX = InboxEvent.__table__
_INSERT_INBOX = insert(_INBOX)
# One event's inbox row unless the id is there already: one round trip where a SELECT and an
# INSERT in a savepoint took four, and right when a consumer beside this one commits the id
# meanwhile. The contract has checked the id and the type, so IGNORE has nothing else to hide.
_INSERT_INBOX_UNLESS_SEEN = (
    insert(_INBOX).prefix_with("IGNORE", dialect="mysql").prefix_with("OR IGNORE", dialect="sqlite")
)


class SqlInboxStore:
    """The consumer's view of main's inbox and of the replica its handlers change."""

    def __init__(self, engine):
        self.engine = engine

    def apply(self, events: list[contract.Event]) -> list[str]:
        """Record the events in the inbox and apply them in ONE transaction; return outcomes in order."""
        with self.engine.begin() as conn:
            if len(events) == 1:
                event = events[0]
                row = {"message_id": event.id, "event_type": event.type, "received_at": utcnow()}
                if not conn.execute(_INSERT_INBOX_UNLESS_SEEN, row).rowcount:
                    return [core.DUPLICATE]
                return [handlers.apply(conn, event)]
            seen = set(
                conn.execute(
                    select(_INBOX.c.message_id).where(_INBOX.c.message_id.in_({e.id for e in events}))
                ).scalars()
            )
            fresh = []
            for event in events:
                if event.id not in seen:
                    seen.add(event.id)
                    fresh.append(event)
            if fresh:
                now = utcnow()
                # One multi-row INSERT for the batch (a concurrent consumer that took an id meanwhile
                # makes it raise IntegrityError, and the consumer splits the batch).
                conn.execute(
                    _INSERT_INBOX,
                    [{"message_id": e.id, "event_type": e.type, "received_at": now} for e in fresh],
                )
            applied = {id(event): handlers.apply(conn, event) for event in fresh}
            outcomes = [applied.get(id(event), core.DUPLICATE) for event in events]
        return outcomes

    def classify(self, exc: BaseException) -> str:
        """A constraint an event breaks, or a handler bug, is the event's; any other database error is not.

        Schema trouble (a table missing after a bad deploy: MySQL's 1146 is a ProgrammingError; an
        unknown column arrives as an OperationalError) is retried in place like an outage, never
        blamed on a good message.
        """
        if isinstance(exc, IntegrityError | DataError | pymysql.err.IntegrityError | pymysql.err.DataError):
            return core.REJECT
        return core.RETRY if isinstance(exc, DATABASE_ERRORS) else core.REJECT

    def heartbeat(self, name: str) -> None:
        """Record that the consumer is alive."""
        beat(name, self.engine)

    def reset(self) -> None:
        """Drop the pool after an error: a driver error SQLAlchemy did not wrap leaves a dead connection in it."""
        self.engine.dispose()


def build(app, **overrides) -> core.Consumer:
    """Return main's consumer for app, configured from its config (overrides: tests)."""
    with app.app_context():
        engine = db.engine
    options = {
        "params": topology.connection_parameters(
            app.config["RABBITMQ_URL"], app.config.get("RABBITMQ_CA_FILE"), client_name="main-consumer"
        ),
        "parse": contract.parse,
        "invalid_event": contract.InvalidEvent,
        "heartbeat_name": HEARTBEAT_NAME,
        "prefetch": PREFETCH,
        "batch_size": BATCH_SIZE,
        **overrides,
    }
    return core.Consumer(SqlInboxStore(engine), topology.TOPOLOGY, metrics.CONSUMER, **options)


def run_consumer(app) -> None:
    """Consume the `main` queue until SIGTERM (exit 0); exit 1 on an unrecoverable error."""
    pika_warnings_only()
    metrics.serve(metrics_port(CONSUMER_METRICS_PORT))
    code = build(app).run()
    if code:
        raise SystemExit(code)
