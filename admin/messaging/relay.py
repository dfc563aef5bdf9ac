"""admin's outbox relay: eventbus.relay over the Django ORM (README: How an event travels)."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db import connection as db_connection
from django.db.models import Count, F, Min
from django.utils import timezone
from eventbus import relay as core
from eventbus.metrics import relay_metrics
from eventbus.publisher import OutboxRow
from prometheus_client import REGISTRY

from messaging import contract, runtime, topology

logger = logging.getLogger(__name__)

HEARTBEAT_NAME = "admin-relay"
METRICS = relay_metrics(REGISTRY, contract.PUBLISHED)


class DjangoOutboxStore:
    """The relay's view of admin's outbox and inbox tables."""

    # Any database error: an outage is retried, and so is a schema problem (migrations not run),
    # loudly, until someone fixes it; the rows wait in the outbox meanwhile.
    database_errors = (DatabaseError,)

    @contextlib.contextmanager
    def claim(self, limit: int):
        """Claim due rows in id order; on MySQL they stay locked (SKIP LOCKED) until the marks commit.

        SQLite has no row locks, and its write transaction holds the whole file: there the claim
        ends before the broker round trip and the marks get their own short transaction.
        """
        from messaging.models import OutboxEvent

        locking = db_connection.features.has_select_for_update
        with transaction.atomic() if locking else contextlib.nullcontext():
            rows = OutboxEvent.objects.filter(published_at__isnull=True, available_at__lte=timezone.now())
            if db_connection.features.has_select_for_update_skip_locked:
                rows = rows.select_for_update(skip_locked=True)
            claimed = [
                OutboxRow(r.id, r.event_id, r.event_type, r.payload, r.headers, r.created_at, r.attempts)
                for r in rows.order_by("id")[:limit]
            ]
            yield core.ClaimedBatch(claimed, self._mark)

    @staticmethod
    def _mark(published: list[int], retry: dict[int, tuple[float, str]]) -> None:
        from messaging.models import OutboxEvent

        now = timezone.now()
        # savepoint=False: inside the claim's transaction a savepoint would only add two round trips.
        with transaction.atomic(savepoint=False):
            if published:
                OutboxEvent.objects.filter(id__in=published).update(published_at=now)
            for row_id, (delay, error) in retry.items():
                OutboxEvent.objects.filter(id=row_id).update(
                    attempts=F("attempts") + 1,
                    last_error=error[:2000],
                    available_at=now + dt.timedelta(seconds=delay),
                )

    def stats(self) -> tuple[int, dt.datetime | None]:
        """Return the pending rows and the creation time of the oldest."""
        from messaging.models import OutboxEvent

        stats = OutboxEvent.objects.filter(published_at__isnull=True).aggregate(
            pending=Count("id"), oldest=Min("created_at")
        )
        return stats["pending"], stats["oldest"]

    def prune(self, table: str, older_than: dt.timedelta, limit: int) -> int:
        """Delete at most limit sent outbox rows or seen inbox rows older than that (indexed)."""
        from messaging.models import InboxEvent, OutboxEvent

        cutoff = timezone.now() - older_than
        if table == "outbox":
            old = OutboxEvent.objects.filter(published_at__lt=cutoff)
        else:
            old = InboxEvent.objects.filter(received_at__lt=cutoff)
        with transaction.atomic():
            keys = list(old.values_list("pk", flat=True)[:limit])
            if keys:
                old.model.objects.filter(pk__in=keys).delete()
        return len(keys)

    def heartbeat(self, name: str) -> None:
        """Record that the relay is alive."""
        runtime.beat(name)

    def reset(self) -> None:
        """Drop this thread's database connection after an error."""
        runtime.reset_db_connection()


def build(**overrides) -> core.Relay:
    """Return admin's relay, configured from the settings (overrides: tests)."""
    options = {
        "params": topology.connection_parameters(client_name="admin-relay"),
        "producer": contract.PRODUCER,
        "heartbeat_name": HEARTBEAT_NAME,
        "wakeup_addr": settings.OUTBOX_WAKEUP_ADDR,
        "outbox_retention_hours": settings.OUTBOX_RETENTION_HOURS,
        "inbox_retention_hours": settings.INBOX_RETENTION_HOURS,
        **overrides,
    }
    return core.Relay(DjangoOutboxStore(), topology.TOPOLOGY, METRICS, **options)
