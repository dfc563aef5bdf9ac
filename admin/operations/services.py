"""The dead-letter workbench of admin's queue (eventbus.workbench) and the audit rows staff actions leave."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from eventbus.workbench import DeadLetters

from messaging import topology
from operations.models import DeadLetterAudit


def workbench() -> DeadLetters:
    """Return the workbench of admin.dlq, on RABBITMQ_URL's broker(s)."""
    return DeadLetters(topology.connection_parameters(client_name="admin-dead-letters"), topology.TOPOLOGY)


def _text(value) -> str:
    return "" if value is None else str(value)


def recorder(action: str, actor: str, reason: str) -> Callable[[dict], None]:
    """Return the record(detail) the workbench calls before it drops a message: one committed audit row."""

    def record(detail: dict) -> None:
        archive = action == DeadLetterAudit.Action.ARCHIVE
        headers = None
        if archive:
            headers = dict(detail.get("headers") or {})
            if detail.get("x_death"):
                headers["x-death"] = detail["x_death"]
        # No request-wide transaction (ATOMIC_REQUESTS is off): create() commits here, before the ack.
        DeadLetterAudit.objects.create(
            action=action,
            message_id=_text(detail.get("message_id")),
            event_type=_text(detail.get("type")),
            fingerprint=_text(detail.get("fingerprint")),
            actor=actor,
            reason=reason,
            body=_text(detail.get("body")) if archive else None,
            headers=headers,
        )

    return record


def record_retries(
    message_ids: Iterable[str | None], actor: str, reason: str, fingerprint: str = "", event_type: str = ""
) -> None:
    """Write one audit row per retried message."""
    DeadLetterAudit.objects.bulk_create(
        DeadLetterAudit(
            action=DeadLetterAudit.Action.RETRY,
            message_id=_text(message_id),
            event_type=event_type,
            fingerprint=fingerprint,
            actor=actor,
            reason=reason,
        )
        for message_id in message_ids
    )


def audit_trail(limit: int) -> list[DeadLetterAudit]:
    """Return the newest audit rows first."""
    return list(DeadLetterAudit.objects.order_by("-at", "-id")[:limit])
