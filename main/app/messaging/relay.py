"""main's outbox relay: eventbus.relay over SQLAlchemy (README: How an event travels)."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging

from eventbus import relay as core
from eventbus.publisher import OutboxRow
from eventbus.runtime import metrics_port
from sqlalchemy import delete, func, select, update

from app.extensions import db, is_mysql
from app.messaging import contract, metrics, topology
from app.messaging.worker import DATABASE_ERRORS, RELAY_METRICS_PORT, beat, pika_warnings_only
from app.models import InboxEvent, OutboxEvent, utcnow

logger = logging.getLogger(__name__)

HEARTBEAT_NAME = "main-relay"

_OUTBOX = OutboxEvent.__table__
_INBOX = InboxEvent.__table__
_CLAIM_COLUMNS = (
    _OUTBOX.c.id,
    _OUTBOX.c.event_id,
    _OUTBOX.c.event_type,
    _OUTBOX.c.payload,
    _OUTBOX.c.headers,
    _OUTBOX.c.created_at,
    _OUTBOX.c.attempts,
)


class SqlOutboxStore:
    """The relay's view of main's outbox and inbox tables, on the app's engine (no app context needed)."""

    # Any database error: an outage is retried, and so is a schema problem (migrations not run),
    # loudly, until someone fixes it; the rows wait in the outbox meanwhile.
    database_errors = DATABASE_ERRORS

    def __init__(self, engine):
        self.engine = engine
        self.mysql = is_mysql(engine)
        self._claim_conn = None

    def _claiming_connection(self):
        """The publishing loop's own connection, kept between batches.

        A pool checkout per batch would cost three round trips more (the isolation level set and
        reset, the rollback on return), as much as the claim itself under load.
        """
        if self._claim_conn is None or self._claim_conn.closed or self._claim_conn.invalidated:
            conn = self.engine.connect()
            if self.mysql:
                # READ COMMITTED: no gap locks, so the web's new outbox inserts never wait on us.
                conn.execution_options(isolation_level="READ COMMITTED")
            self._claim_conn = conn
        return self._claim_conn

    @contextlib.contextmanager
    def claim(self, limit: int):
        """Claim due rows in id order; on MySQL they stay locked (SKIP LOCKED) until the marks commit.

        SQLite has no row locks, and its write transaction holds the whole file: there the claim
        ends before the broker round trip and the marks get their own short transaction.
        """
        conn = self._claiming_connection()
        tx = conn.begin()
        try:
            query = (
                select(*_CLAIM_COLUMNS)
                .where(_OUTBOX.c.published_at.is_(None), _OUTBOX.c.available_at <= utcnow())
                .order_by(_OUTBOX.c.id)
                .limit(limit)
                .with_for_update(skip_locked=True)  # rendered where supported (MySQL/MariaDB 10.6+)
            )
            rows = [
                OutboxRow(r.id, r.event_id, r.event_type, r.payload, r.headers, r.created_at, r.attempts)
                for r in conn.execute(query)
            ]
            if not self.mysql:
                tx.commit()
                tx = None

            def mark(published: list[int], retry: dict[int, tuple[float, str]]) -> None:
                nonlocal tx
                if tx is None:
                    tx = conn.begin()
                now = utcnow()
                if published:
                    conn.execute(update(_OUTBOX).where(_OUTBOX.c.id.in_(published)).values(published_at=now))
                for row_id, (delay, error) in retry.items():
                    conn.execute(
                        update(_OUTBOX)
                        .where(_OUTBOX.c.id == row_id)
                        .values(
                            attempts=_OUTBOX.c.attempts + 1,
                            available_at=now + dt.timedelta(seconds=delay),
                            last_error=error[:1000],
                        )
                    )

            yield core.ClaimedBatch(rows, mark)
            if tx is not None:
                tx.commit()
        except BaseException:
            if tx is not None and tx.is_active:
                tx.rollback()
            raise

    def stats(self) -> tuple[int, dt.datetime | None]:
        """Return the pending rows and the creation time (UTC) of the oldest."""
        with self.engine.connect() as conn:
            count, oldest = conn.execute(
                select(func.count(), func.min(_OUTBOX.c.created_at)).where(_OUTBOX.c.published_at.is_(None))
            ).one()
        return count, oldest.replace(tzinfo=dt.UTC) if oldest is not None else None

    def prune(self, table: str, older_than: dt.timedelta, limit: int) -> int:
        """Delete at most limit sent outbox rows or seen inbox rows older than that (indexed)."""
        target, key, stamp = (
            (_OUTBOX, _OUTBOX.c.id, _OUTBOX.c.published_at)
            if table == "outbox"
            else (_INBOX, _INBOX.c.message_id, _INBOX.c.received_at)
        )
        with self.engine.begin() as conn:
            # Keys first: MySQL refuses LIMIT inside IN (subquery).
            keys = conn.execute(select(key).where(stamp < utcnow() - older_than).limit(limit)).scalars().all()
            if keys:
                conn.execute(delete(target).where(key.in_(keys)))
        return len(keys)

    def heartbeat(self, name: str) -> None:
        """Record that the relay is alive."""
        beat(name, self.engine)

    def reset(self) -> None:
        """Drop the pool after an error: a driver error SQLAlchemy did not wrap leaves a dead connection in it."""
        conn, self._claim_conn = self._claim_conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.invalidate()
        self.engine.dispose()


def build(app, **overrides) -> core.Relay:
    """Return main's relay for app, configured from its config (overrides: tests)."""
    with app.app_context():
        engine = db.engine
    options = {
        "params": topology.connection_parameters(
            app.config["RABBITMQ_URL"], app.config.get("RABBITMQ_CA_FILE"), client_name="main-relay"
        ),
        "producer": contract.PRODUCER,
        "heartbeat_name": HEARTBEAT_NAME,
        "wakeup_addr": app.config.get("OUTBOX_WAKEUP_ADDR"),
        "outbox_retention_hours": float(app.config.get("OUTBOX_RETENTION_HOURS", 24)),
        "inbox_retention_hours": float(app.config.get("INBOX_RETENTION_HOURS", 168)),
        **overrides,
    }
    return core.Relay(SqlOutboxStore(engine), topology.TOPOLOGY, metrics.RELAY, **options)


def run_relay(app) -> None:
    """Run the outbox relay until SIGTERM (exit 0); exit 1 on an unrecoverable error."""
    pika_warnings_only()
    metrics.serve(metrics_port(RELAY_METRICS_PORT))
    code = build(app).run()
    if code:
        raise SystemExit(code)
