"""Apply events consumed from main to admin's data (called inside the consumer's transaction)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from messaging import contract
from messaging.contract import Event

logger = logging.getLogger(__name__)

APPLIED = "applied"
STALE = "stale"
UNKNOWN_PRODUCT = "unknown_product"


def apply_likes(event: Event) -> str:
    """Set the product's likes from an absolute count unless a newer sequence was applied.

    A forced count (likes_counted version 2, from `flask resync-likes --force`) is main's state,
    applied whatever seq admin holds.
    """
    from products.models import Product
    from products.services import apply_likes as set_likes
    from products.services import force_likes

    data = event.data
    if data.get("force"):
        if force_likes(data["product_id"], data["likes"], data["seq"]):
            logger.info(
                "likes of product %s forced to %s (seq %s)",
                data["product_id"],
                data["likes"],
                data["seq"],
                extra={"event_id": event.id, "event_type": event.type},
            )
            return APPLIED
    elif set_likes(data["product_id"], data["likes"], data["seq"]):
        return APPLIED
    if Product.objects.filter(pk=data["product_id"]).exists():
        logger.info(
            "likes seq %s is older than the product's; ignored",
            data["seq"],
            extra={"event_id": event.id, "event_type": event.type},
        )
        return STALE
    # Main may know products admin already deleted: not an error, nothing to change.
    logger.warning(
        "likes for unknown product %s ignored",
        data["product_id"],
        extra={"event_id": event.id, "event_type": event.type},
    )
    return UNKNOWN_PRODUCT


HANDLERS: dict[str, Callable[[Event], str]] = {
    contract.PRODUCT_LIKED: apply_likes,
    contract.PRODUCT_UNLIKED: apply_likes,
    contract.PRODUCT_LIKES_COUNTED: apply_likes,
}


def handle(event: Event) -> str:
    """Dispatch an event to its handler and return the outcome."""
    return HANDLERS[event.type](event)


LIKES_TYPES = frozenset((contract.PRODUCT_LIKED, contract.PRODUCT_UNLIKED, contract.PRODUCT_LIKES_COUNTED))


def apply_likes_batch(events: list[Event]) -> dict[str, str]:
    """Apply many likes events with set-based SQL; return event id -> outcome.

    Only the highest seq per product can change anything, so one UPDATE covers the batch; the
    others are stale (superseded) exactly as if they had been applied one by one in seq order.
    """
    from products.services import apply_likes_batch as set_likes

    latest: dict[int, tuple[int, int]] = {}
    for event in events:
        data = event.data
        pid = data["product_id"]
        if pid not in latest or data["seq"] >= latest[pid][1]:
            latest[pid] = (data["likes"], data["seq"])
    per_product = set_likes(latest)
    outcomes: dict[str, str] = {}
    for event in events:
        pid, seq = event.data["product_id"], event.data["seq"]
        result = per_product[pid]
        if result == "unknown":
            outcomes[event.id] = UNKNOWN_PRODUCT
        elif result == "applied" and seq == latest[pid][1]:
            outcomes[event.id] = APPLIED
        else:
            outcomes[event.id] = STALE
    for event in events:
        if outcomes[event.id] == UNKNOWN_PRODUCT:
            # Main may know products admin already deleted: not an error, nothing to change.
            logger.warning(
                "likes for unknown product %s ignored",
                event.data["product_id"],
                extra={"event_id": event.id, "event_type": event.type},
            )
    return outcomes


def handle_batch(events: list[Event]) -> dict[str, str]:
    """Apply a batch of distinct events inside the caller's transaction; return event id -> outcome.

    Like events go set-based, a run at a time; a forced count ends the run before it, so that it
    lands after the likes published before it and before those published after it.
    """
    outcomes: dict[str, str] = {}
    run: list[Event] = []
    for event in events:
        if (
            event.type in LIKES_TYPES
            and HANDLERS.get(event.type) is apply_likes
            and not event.data.get("force")
        ):
            run.append(event)
            continue
        if run:
            outcomes.update(apply_likes_batch(run))
            run = []
        outcomes[event.id] = handle(event)
    if run:
        outcomes.update(apply_likes_batch(run))
    return outcomes
