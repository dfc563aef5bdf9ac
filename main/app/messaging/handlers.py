"""Apply admin's product events to main's replica (idempotent, order-independent).

Rules (README: Event catalogue): an event is applied only if data.version >= replica.version; a delete
leaves a tombstone (deleted=true, version kept) and a tombstone of version v blocks every
create/update with version <= v. Every write is one conditional statement, so several consumers
working side by side cannot undo each other whatever the interleaving.
"""

from __future__ import annotations

import logging

from sqlalchemy import and_, bindparam, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from app.messaging import contract
from app.models import Product, utcnow

logger = logging.getLogger(__name__)

_product = Product.__table__
_SNAPSHOT_CHUNK = 500
# The version a catalogue snapshot gives the tombstones it makes. admin no longer has those
# products, so their last version is unknown; an update of any version (a redriven dead letter, a
# message delayed past the resync) must not bring them back, and admin never reuses a product id
# (MySQL and MariaDB persist AUTO_INCREMENT, SQLite's AUTOINCREMENT never goes back). So the
# tombstone is final: the largest version a 32-bit INT column holds.
SNAPSHOT_TOMBSTONE_VERSION = 2**31 - 1

APPLIED = "applied"
STALE = "stale"


def _newer_or_same():
    # A tombstone of version v blocks every create/update with version <= v.
    return or_(
        and_(_product.c.deleted.is_(False), _product.c.version <= bindparam("p_version")),
        and_(_product.c.deleted.is_(True), _product.c.version < bindparam("p_version")),
    )


# Built once: building a statement per event (coercing every value and where clause, then
# generating its cache key) cost as much CPU as the rest of the apply together.
_REPLICA_VALUES = {
    "title": bindparam("p_title"),
    "image": bindparam("p_image"),
    "version": bindparam("p_version"),
    "deleted": False,
    "updated_at": bindparam("p_now"),
}
_UPSERT_UPDATE = (
    update(_product).where(_product.c.id == bindparam("p_id"), _newer_or_same()).values(**_REPLICA_VALUES)
)
_UPSERT_INSERT = insert(_product).values(
    id=bindparam("p_id"),
    title=bindparam("p_title"),
    image=bindparam("p_image"),
    version=bindparam("p_version"),
    deleted=False,
    likes=0,
    likes_seq=0,
    updated_at=bindparam("p_now"),
)
# A forced update (version 2 with force=true, from `resync_products --force`) is admin's state
# whatever version the replica holds, tombstones included: admin has the product.
_FORCED_UPDATE = update(_product).where(_product.c.id == bindparam("p_id")).values(**_REPLICA_VALUES)
_DELETE_UPDATE = (
    update(_product)
    .where(_product.c.id == bindparam("p_id"), _product.c.version <= bindparam("p_version"))
    .values(deleted=True, version=bindparam("p_version"), updated_at=bindparam("p_now"))
)
# An unknown product still gets a tombstone, so a late create cannot bring it back.
_DELETE_INSERT = insert(_product).values(
    id=bindparam("p_id"),
    title="",
    image="",
    version=bindparam("p_version"),
    deleted=True,
    likes=0,
    likes_seq=0,
    updated_at=bindparam("p_now"),
)

_ROW_EXISTS = select(_product.c.id).where(_product.c.id == bindparam("p_id"))


def _insert_or_update(session, update_stmt, insert_stmt, params: dict, insert_first: bool = False) -> str:
    """Apply an event to the replica row: the conditional UPDATE, or the INSERT when there is no row.

    insert_first suits events that usually name a new product (product.created): the INSERT then
    succeeds in three round trips (savepoint, insert, release) instead of five (update, select,
    savepoint, insert, release). A row that exists already, tombstone included, turns the INSERT
    into an IntegrityError and the conditional UPDATE decides, exactly as on the other path.
    """
    if not insert_first:
        if session.execute(update_stmt, params).rowcount:
            return APPLIED
        if session.execute(_ROW_EXISTS, params).first():
            return STALE
    try:
        # A savepoint: the row may exist (insert_first), or a concurrent consumer may insert it first.
        with session.begin_nested():
            session.execute(insert_stmt, params)
        return APPLIED
    except IntegrityError:
        return APPLIED if session.execute(update_stmt, params).rowcount else STALE


def upsert_product(session, event: contract.Event) -> str:
    """Create or update the replica unless it (or its tombstone) is newer."""
    data = event.data
    params = {
        "p_id": data["id"],
        "p_title": data["title"],
        "p_image": data["image"],
        "p_version": data["version"],
        "p_now": utcnow(),
    }
    if data.get("force"):
        return _insert_or_update(session, _FORCED_UPDATE, _UPSERT_INSERT, params)
    created = event.type == contract.PRODUCT_CREATED
    return _insert_or_update(session, _UPSERT_UPDATE, _UPSERT_INSERT, params, insert_first=created)


def delete_product(session, event: contract.Event) -> str:
    """Turn the replica into a tombstone (or create one) unless the replica is newer."""
    data = event.data
    params = {"p_id": data["id"], "p_version": data["version"], "p_now": utcnow()}
    return _insert_or_update(session, _DELETE_UPDATE, _DELETE_INSERT, params)


def apply_snapshot(session, event: contract.Event) -> str:
    """Tombstone every live replica with id <= max_id that admin no longer has."""
    keep = set(event.data["ids"])
    live = session.execute(
        select(_product.c.id).where(_product.c.deleted.is_(False), _product.c.id <= event.data["max_id"])
    ).scalars()
    gone = sorted(set(live) - keep)
    now = utcnow()
    for start in range(0, len(gone), _SNAPSHOT_CHUNK):
        chunk = gone[start : start + _SNAPSHOT_CHUNK]
        session.execute(
            update(_product)
            .where(_product.c.id.in_(chunk), _product.c.deleted.is_(False))
            .values(deleted=True, version=SNAPSHOT_TOMBSTONE_VERSION, updated_at=now)
        )
    if gone:
        logger.info(
            "catalogue snapshot tombstoned %s products",
            len(gone),
            extra={"event_id": event.id, "event_type": event.type},
        )
    return APPLIED


HANDLERS = {
    contract.PRODUCT_CREATED: upsert_product,
    contract.PRODUCT_UPDATED: upsert_product,
    contract.PRODUCT_DELETED: delete_product,
    contract.CATALOGUE_SNAPSHOT: apply_snapshot,
}


def apply(session, event: contract.Event) -> str:
    """Apply event inside the caller's transaction; return "applied" or "stale"."""
    return HANDLERS[event.type](session, event)
