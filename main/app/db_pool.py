"""Pessimistic disconnect handling that pays its round trip only after idleness.

SQLAlchemy's pool_pre_ping pings on every checkout: one extra database round trip on every like,
about a fifth of its database time here (tests/load/bench_likes.py). The pool events below do
what SQLAlchemy's documentation describes for custom pessimistic handling, but only for a
connection that sat idle in the pool: one that was used a moment ago is very probably alive,
and if the database went away in that moment the failing statement invalidates the whole pool
(SQLAlchemy's optimistic handling), so one request sees the error instead of every pooled
connection failing a request in turn.
"""

import logging
import time

from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError

logger = logging.getLogger(__name__)

PING_AFTER_IDLE_SECONDS = 1.0
_CHECKED_IN_AT = "checked_in_at"


def ping_after_idle(engine, idle_seconds=PING_AFTER_IDLE_SECONDS, clock=time.monotonic):
    """Ping a pooled connection on checkout when it was idle idle_seconds or more."""

    @event.listens_for(engine, "checkin")
    def _remember_checkin(dbapi_connection, record):
        record.info[_CHECKED_IN_AT] = clock()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection, record, proxy):
        checked_in_at = record.info.get(_CHECKED_IN_AT)
        if checked_in_at is None or clock() - checked_in_at < idle_seconds:
            return  # new, or used a moment ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            # The pool discards this connection and checks out another (up to three tries).
            logger.info("pooled database connection is dead (%s); reconnecting", type(exc).__name__)
            raise DisconnectionError(str(exc)) from exc
