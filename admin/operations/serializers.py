"""What the dead-letter endpoints accept (strictly) and answer (documented for /api/schema)."""

from __future__ import annotations

import re

from rest_framework import serializers

from operations.models import DeadLetterAudit

FINGERPRINT_RE = re.compile(r"^[0-9a-f]{16}$")
MESSAGE_ID_MAX = 255
REASON_MAX = 500


class StrictCharField(serializers.CharField):
    """A CharField that refuses numbers, booleans, lists and objects instead of turning them into text."""

    default_error_messages = {"invalid": "Must be a string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class FingerprintField(StrictCharField):
    """A failure group's fingerprint: 16 lowercase hex characters."""

    def __init__(self, **kwargs):
        kwargs.setdefault("help_text", "A failure group's fingerprint: 16 hex characters.")
        super().__init__(max_length=16, min_length=16, **kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data).lower()
        if not FINGERPRINT_RE.match(value):
            raise serializers.ValidationError("Must be 16 hex characters (a group's fingerprint).")
        return value


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know (a misspelt selector must not go unnoticed)."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


class OverviewQuery(StrictSerializer):
    """GET /api/dead-letters query: an optional group, and a page."""

    fingerprint = FingerprintField(required=False)
    limit = serializers.IntegerField(min_value=1, max_value=200, default=50)
    offset = serializers.IntegerField(min_value=0, max_value=1_000_000, default=0)


class AuditQuery(StrictSerializer):
    """GET /api/dead-letters/audit query."""

    limit = serializers.IntegerField(min_value=1, max_value=200, default=50)


class SelectorSerializer(StrictSerializer):
    """Exactly one of message_id (one dead letter) or fingerprint (a whole group)."""

    message_id = StrictCharField(required=False, max_length=MESSAGE_ID_MAX, help_text="One dead letter.")
    fingerprint = FingerprintField(required=False)

    def validate(self, attrs):
        given = [name for name in ("message_id", "fingerprint") if name in attrs]
        if len(given) != 1:
            problem = "Give exactly one of message_id or fingerprint." + (
                " Both were given." if given else ""
            )
            raise serializers.ValidationError({"message_id": [problem], "fingerprint": [problem]})
        return attrs


class RetrySerializer(SelectorSerializer):
    """POST /api/dead-letters/retry body; a reason is optional (kept in the audit)."""

    reason = StrictCharField(required=False, allow_blank=True, max_length=REASON_MAX, default="")


class RemoveSerializer(SelectorSerializer):
    """POST /api/dead-letters/discard and /archive body: the selector and why."""

    reason = StrictCharField(
        max_length=REASON_MAX, help_text=f"Why (1..{REASON_MAX} characters); kept in the audit."
    )


# ----- answers (documentation only: the views return the workbench's dicts) ----------------------
class DepthSerializer(serializers.Serializer):
    queue = serializers.CharField()
    depth = serializers.IntegerField()


class SummarySerializer(serializers.Serializer):
    message_id = serializers.CharField(allow_null=True)
    type = serializers.CharField(allow_null=True)
    routing_key = serializers.CharField(allow_null=True)
    fingerprint = serializers.CharField()
    reason = serializers.CharField(allow_null=True)
    exception_type = serializers.CharField(allow_null=True)
    exception_message = serializers.CharField(allow_null=True)
    where = serializers.CharField(allow_null=True)
    attempts = serializers.IntegerField()
    first_failed_at = serializers.CharField(allow_null=True)
    last_failed_at = serializers.CharField(allow_null=True)
    host = serializers.CharField(allow_null=True)
    source = serializers.ChoiceField(choices=["consumer", "broker"])
    queue = serializers.CharField(allow_null=True, required=False, help_text="The queue it failed in.")
    retried = serializers.IntegerField(help_text="How many times it was retried before.")


class GroupSerializer(serializers.Serializer):
    fingerprint = serializers.CharField()
    reason = serializers.CharField(allow_null=True)
    exception_type = serializers.CharField(allow_null=True)
    exception_message = serializers.CharField(allow_null=True)
    where = serializers.CharField(allow_null=True)
    event_types = serializers.ListField(child=serializers.CharField())
    count = serializers.IntegerField()
    first_seen = serializers.CharField(allow_null=True)
    last_seen = serializers.CharField(allow_null=True)


class OverviewSerializer(serializers.Serializer):
    queue = serializers.CharField()
    depth = serializers.IntegerField()
    scanned = serializers.IntegerField()
    capped = serializers.BooleanField(help_text="True when the queue held more than one scan reads (5,000).")
    oldest_at = serializers.CharField(allow_null=True)
    groups = GroupSerializer(many=True)
    count = serializers.IntegerField(help_text="Messages matching the filter.")
    results = SummarySerializer(many=True, help_text="One page of them, newest failure first.")


class DetailSerializer(SummarySerializer):
    payload = serializers.JSONField(allow_null=True, help_text="The body parsed as JSON, or null.")
    body = serializers.CharField(help_text="The body as text (at most 64 KiB).")
    headers = serializers.DictField(help_text="The AMQP headers, x-death aside.")
    x_death = serializers.ListField(child=serializers.DictField(), help_text="The broker's x-death records.")
    body_truncated = serializers.BooleanField(required=False)
    content_type = serializers.CharField(allow_null=True, required=False)
    copies = serializers.IntegerField(required=False, help_text="Dead letters with this message_id.")


class RetryResultSerializer(serializers.Serializer):
    matched = serializers.IntegerField()
    retried = serializers.IntegerField()
    depth = serializers.IntegerField(help_text="The dead-letter queue's depth when the retry started.")
    message_ids = serializers.ListField(child=serializers.CharField(allow_null=True))


class DiscardResultSerializer(serializers.Serializer):
    discarded = serializers.IntegerField()
    message_ids = serializers.ListField(child=serializers.CharField(allow_null=True))


class ArchiveResultSerializer(serializers.Serializer):
    archived = serializers.IntegerField()
    message_ids = serializers.ListField(child=serializers.CharField(allow_null=True))


class AuditSerializer(serializers.ModelSerializer):
    archived = serializers.BooleanField(
        read_only=True, help_text="True when the row keeps the message's copy."
    )

    class Meta:
        model = DeadLetterAudit
        fields = (
            "id",
            "action",
            "message_id",
            "event_type",
            "fingerprint",
            "actor",
            "reason",
            "at",
            "archived",
        )


class AuditListSerializer(serializers.Serializer):
    results = AuditSerializer(many=True)


class InvalidSerializer(serializers.Serializer):
    error = serializers.ChoiceField(choices=["invalid"])
    detail = serializers.CharField()
    fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))
