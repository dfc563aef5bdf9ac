"""Outbox, inbox and worker heartbeat tables (shape shared with the main service)."""

from django.db import models
from django.utils import timezone
from django_prometheus.models import ExportModelOperationsMixin


class OutboxEvent(ExportModelOperationsMixin("outbox"), models.Model):
    """An event written in the same transaction as the change it describes."""

    id = models.BigAutoField(primary_key=True)  # publish order
    event_id = models.CharField(max_length=36, unique=True)
    event_type = models.CharField(max_length=64)
    payload = models.TextField()  # the full envelope JSON
    headers = models.TextField(default="{}")  # W3C trace context JSON
    created_at = models.DateTimeField(default=timezone.now)
    available_at = models.DateTimeField(default=timezone.now)  # retry backoff
    attempts = models.IntegerField(default=0)
    last_error = models.TextField(null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "outbox"
        ordering = ("id",)
        indexes = (models.Index(fields=["published_at", "id"], name="outbox_pending_idx"),)

    def __str__(self):
        return f"{self.event_type} {self.event_id}"


class InboxEvent(ExportModelOperationsMixin("inbox"), models.Model):
    """A consumed message id: the dedupe record, written with the change it caused."""

    message_id = models.CharField(max_length=36, primary_key=True)
    event_type = models.CharField(max_length=64)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "inbox"
        # Pruning deletes by age: without it every prune scans the whole table.
        indexes = (models.Index(fields=["received_at"], name="inbox_received_at_idx"),)

    def __str__(self):
        return f"{self.event_type} {self.message_id}"


class WorkerHeartbeat(models.Model):
    """The last time a worker (consumer, relay) reported itself alive."""

    name = models.CharField(max_length=64, primary_key=True)
    last_seen = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "worker_heartbeat"

    def __str__(self):
        return f"{self.name} @ {self.last_seen.isoformat()}"
