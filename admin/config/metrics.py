"""GET /metrics: django-prometheus's export, with the migration gauges read at scrape time."""

from __future__ import annotations

import logging
import threading
import time

from django.db import DatabaseError, connections
from django_prometheus.exports import ExportToDjangoView
from django_prometheus.migrations import ExportMigrationsForDatabase

logger = logging.getLogger(__name__)

REFRESH_SECONDS = 60.0
_lock = threading.Lock()
_next_refresh = 0.0


def refresh_migration_gauges(clock=time.monotonic) -> None:
    """Set django_migrations_(un)applied_total, at most once a minute.

    django-prometheus can set them when the process starts (PROMETHEUS_EXPORT_MIGRATIONS), but
    that reads the database during start-up, where a database that is not up yet stops the
    process. Read here, an unreadable database only leaves the gauges as they were.
    """
    global _next_refresh
    from django.db.migrations.executor import MigrationExecutor

    with _lock:
        if clock() < _next_refresh:
            return
        _next_refresh = clock() + REFRESH_SECONDS
        for alias in connections.databases:
            try:
                ExportMigrationsForDatabase(alias, MigrationExecutor(connections[alias]))
            except DatabaseError as exc:
                logger.info("migration gauges not refreshed: %s", type(exc).__name__)


def metrics(request):
    """Export the default registry in Prometheus' text format."""
    refresh_migration_gauges()
    return ExportToDjangoView(request)
