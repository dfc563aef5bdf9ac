"""The audit trail of what staff did to dead letters: who, when, why, and an archived copy."""

from django.db import models
from django.utils import timezone


class DeadLetterAudit(models.Model):
    """One retry, discard or archive of one dead letter (archive keeps its body and headers)."""

    class Action(models.TextChoices):
        RETRY = "retry"
        DISCARD = "discard"
        ARCHIVE = "archive"

    action = models.CharField(max_length=16, choices=Action.choices)
    # A message without an AMQP message_id (reason missing_message_id) has none to record.
    message_id = models.CharField(max_length=255, blank=True, default="")
    event_type = models.CharField(max_length=255, blank=True, default="")
    fingerprint = models.CharField(max_length=64, blank=True, default="", db_index=True)
    actor = models.CharField(max_length=150)
    reason = models.TextField(blank=True, default="")
    at = models.DateTimeField(default=timezone.now, db_index=True)
    body = models.TextField(null=True, blank=True)  # archive only
    headers = models.JSONField(null=True, blank=True)  # archive only

    class Meta:
        db_table = "dead_letter_audit"
        ordering = ("-at", "-id")

    def __str__(self) -> str:
        return f"{self.action} {self.message_id or self.fingerprint} by {self.actor}"

    @property
    def archived(self) -> bool:
        """Return True when this row keeps a copy of the message."""
        return self.body is not None
