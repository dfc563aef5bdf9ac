"""main's dead-letter workbench: eventbus.workbench on main.dlq, and the audit trail of what operators did.

The web process serves the workbench of the queue it owns (main.dlq). Every call opens one short
broker connection with the consumer's connection settings (RABBITMQ_URL, RABBITMQ_CA_FILE).
A discarded or archived message is dropped only after its audit row is committed; a retry's rows
are written once the broker has confirmed the copies.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC

from eventbus import connection, workbench
from sqlalchemy import select

from app.extensions import db
from app.messaging import topology
from app.models import DeadLetterAudit

logger = logging.getLogger(__name__)

ACTIONS = ("retry", "discard", "archive")
CLIENT_NAME = "main-operations"


class BrokerUnavailable(Exception):
    """The broker could not serve the operation; the message says what to do next (503)."""


class NotFound(Exception):
    """No dead letter matches (404)."""


def _letters(config):
    try:
        params = topology.connection_parameters(
            config["RABBITMQ_URL"], config.get("RABBITMQ_CA_FILE"), client_name=CLIENT_NAME
        )
    except connection.ConfigError as exc:
        raise BrokerUnavailable(f"{exc}: fix RABBITMQ_URL and restart main") from None
    return workbench.DeadLetters(params, topology.TOPOLOGY)


def _call(config, operation, *args, **kwargs):
    """Run one workbench operation, its exceptions turned into this module's."""
    try:
        return getattr(_letters(config), operation)(*args, **kwargs)
    except workbench.BrokerUnavailable as exc:
        raise BrokerUnavailable(str(exc)) from exc
    except workbench.NotFound as exc:
        raise NotFound(str(exc)) from exc


def depth(config) -> dict:
    """Return main.dlq's depth."""
    return _call(config, "depth")


def overview(config, *, fingerprint=None, limit=50, offset=0) -> dict:
    """Return the groups of main.dlq and one page of its messages (of one group with fingerprint)."""
    return _call(config, "overview", fingerprint=fingerprint, limit=limit, offset=offset)


def show(config, message_id) -> dict:
    """Return one dead letter in full."""
    return _call(config, "show", message_id)


def _clip(value, size):
    return None if value is None else str(value)[:size]


def _row(action, actor, reason, *, message_id=None, event_type=None, fingerprint=None, **kept):
    return DeadLetterAudit(
        action=action,
        message_id=_clip(message_id, 255),
        event_type=_clip(event_type, 255),
        fingerprint=_clip(fingerprint, 64),
        actor=actor[:150],
        reason=reason,
        **kept,
    )


def retry(config, actor, *, message_id=None, fingerprint=None, reason=None) -> dict:
    """Retry one dead letter or a whole group; audit one row per message retried, with its type and group."""

    def record(summary):
        db.session.add(
            _row(
                "retry",
                actor,
                reason,
                message_id=summary.get("message_id"),
                event_type=summary.get("type"),
                fingerprint=summary.get("fingerprint"),
            )
        )

    result = _call(config, "retry", message_id=message_id, fingerprint=fingerprint, record=record)
    db.session.commit()
    logger.info("%s retried %d dead letter(s) of main.dlq", actor, result["retried"])
    return result


def remove(config, action, actor, reason, *, message_id=None, fingerprint=None) -> dict:
    """Discard or archive one dead letter or a whole group; each is dropped after its audit row is committed."""
    if action not in ("discard", "archive"):
        raise ValueError(f"not a removal: {action!r}")

    def record(detail):
        kept = {}
        if action == "archive":
            kept = {
                "body": detail.get("body"),
                "headers": json.dumps(detail["archived_headers"], default=str),
            }
        db.session.add(
            _row(
                action,
                actor,
                reason,
                message_id=detail.get("message_id"),
                event_type=detail.get("type"),
                fingerprint=detail.get("fingerprint"),
                **kept,
            )
        )
        db.session.commit()

    removed = _call(config, "remove", message_id=message_id, fingerprint=fingerprint, record=record)
    ids = [detail.get("message_id") for detail in removed]
    logger.info(
        "%s %s %d dead letter(s) of main.dlq",
        actor,
        "discarded" if action == "discard" else "archived",
        len(ids),
    )
    return {"discarded" if action == "discard" else "archived": len(ids), "message_ids": ids}


def audit(limit=50) -> list[dict]:
    """Return the latest audit rows, newest first."""
    rows = db.session.execute(
        select(DeadLetterAudit).order_by(DeadLetterAudit.id.desc()).limit(limit)
    ).scalars()
    return [
        {
            "id": row.id,
            "action": row.action,
            "message_id": row.message_id,
            "event_type": row.event_type,
            "fingerprint": row.fingerprint,
            "actor": row.actor,
            "reason": row.reason,
            "at": row.at.replace(tzinfo=UTC).isoformat(),
            "archived": row.action == "archive",
        }
        for row in rows
    ]
