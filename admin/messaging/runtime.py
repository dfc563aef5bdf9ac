"""What admin's long-running messaging workers add to eventbus.runtime: Django database handling."""

from __future__ import annotations

import logging

from django.db import InterfaceError, OperationalError
from django.db import connection as db_connection
from django.utils import timezone

logger = logging.getLogger(__name__)

# Database errors worth retrying after reconnecting (server gone, lock wait, deadlock ...).
TRANSIENT_DB_ERRORS = (OperationalError, InterfaceError)
HEARTBEAT_INTERVAL_SECONDS = 5.0


def reset_db_connection() -> None:
    """Drop the Django database connection so the next query opens a fresh one.

    Not inside an enclosing atomic block (a caller's transaction, a test's): that transaction
    still owns the connection, and Django refuses every query after such a close.
    """
    if db_connection.in_atomic_block:
        return
    try:
        db_connection.close()
    except Exception:  # closing a broken connection may itself fail; it is gone either way
        logger.debug("error while closing a broken database connection", exc_info=True)


def beat(name: str) -> None:
    """Record that worker `name` is alive (row in worker_heartbeat)."""
    from messaging.models import WorkerHeartbeat

    WorkerHeartbeat.objects.update_or_create(name=name, defaults={"last_seen": timezone.now()})
