"""What main's long-running messaging workers add to eventbus.runtime: SQLAlchemy database handling."""

from __future__ import annotations

import logging

import pymysql
from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from app.extensions import db
from app.models import WorkerHeartbeat, utcnow

logger = logging.getLogger(__name__)

# What a database outage can raise. SQLAlchemy wraps most driver errors, but not all: a
# connection lost while the pool resets it on check-in (or while setting the isolation level on
# check-out) surfaces as the driver's own error.
DATABASE_ERRORS = (SQLAlchemyError, pymysql.err.Error)

# Development defaults (README: What `make run` starts); METRICS_PORT overrides them, 0 = off.
CONSUMER_METRICS_PORT = 9811
RELAY_METRICS_PORT = 9812


def pika_warnings_only() -> None:
    """Keep pika's per-connection INFO chatter out of the worker logs."""
    logging.getLogger("pika").setLevel(logging.WARNING)


def beat(name: str, engine=None) -> None:
    """Record that worker `name` is alive now (own short transaction; errors are logged only).

    engine: the app's engine by default (needs an app context); a worker thread passes its own.
    """
    now = utcnow()
    table = WorkerHeartbeat.__table__
    try:
        with (engine or db.engine).begin() as conn:
            result = conn.execute(update(table).where(table.c.name == name).values(last_seen=now))
            if result.rowcount == 0:
                try:
                    with conn.begin_nested():
                        conn.execute(insert(table).values(name=name, last_seen=now))
                except IntegrityError:
                    # Another process with the same name inserted first; its beat is as good.
                    pass
    except Exception:  # a missed heartbeat must never stop the worker
        logger.warning("heartbeat %s failed", name, exc_info=True)
