"""The dead-letter workbench of admin's queue (eventbus.workbench) and the audit rows staff actions leave."""

from __future__ import annotations

from collections.abc import Callable

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
        # No request-wide transaction (ATOMIC_REQUESTS is off): create() commits here, before the ack.
        DeadLetterAudit.objects.create(
            action=action,
            message_id=_text(detail.get("message_id")),
            event_type=_text(detail.get("type")),
            fingerprint=_text(detail.get("fingerprint")),
            actor=actor,
            reason=reason,
            body=_text(detail.get("body")) if archive else None,
            headers=detail["archived_headers"] if archive else None,
        )

    return record


def retry(letters: DeadLetters, actor: str, reason: str, **selector) -> dict:
    """Retry one dead letter or a group; write one audit row per message retried, with its type and group."""
    rows: list[DeadLetterAudit] = []

    def record(summary: dict) -> None:
        rows.append(
            DeadLetterAudit(
                action=DeadLetterAudit.Action.RETRY,
                message_id=_text(summary.get("message_id")),
                event_type=_text(summary.get("type")),
                fingerprint=_text(summary.get("fingerprint")),
                actor=actor,
                reason=reason,
            )
        )

    result = letters.retry(**selector, record=record)
    DeadLetterAudit.objects.bulk_create(rows)
    return result


def audit_trail(limit: int) -> list[DeadLetterAudit]:
    """Return the newest audit rows first."""
    return list(DeadLetterAudit.objects.order_by("-at", "-id")[:limit])
