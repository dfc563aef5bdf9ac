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


class SqlInboxStore:
    """The consumer's view of main's inbox and of the replica its handlers change."""

    def __init__(self, engine):
        self.engine = engine

    def apply(self, events: list[contract.Event]) -> list[str]:
        """Record the events in the inbox and apply them in ONE transaction; return outcomes in order."""
        with self.engine.begin() as conn:
            seen = set(
                conn.execute(
                    select(_INBOX.c.message_id).where(_INBOX.c.message_id.in_({e.id for e in events}))
                ).scalars()
            )
            outcomes = []
            for event in events:
                if event.id in seen:
                    outcomes.append(core.DUPLICATE)
                    continue
                seen.add(event.id)
                row = {"message_id": event.id, "event_type": event.type, "received_at": utcnow()}
                if len(events) == 1:
                    try:
                        # Savepoint: a consumer beside this one may have committed the id since the
                        # SELECT; then this is a duplicate, and only the insert is undone.
                        with conn.begin_nested():
                            conn.execute(_INSERT_INBOX, row)
                    except IntegrityError:
                        return [core.DUPLICATE]
                else:
                    conn.execute(_INSERT_INBOX, row)
                outcomes.append(handlers.apply(conn, event))
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
