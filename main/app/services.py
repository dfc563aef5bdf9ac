"""Use cases of the main service: list products, like, unlike, readiness checks.

The like path uses SQLAlchemy Core on one pooled connection: it is the hot path (see
tests/load/bench_likes.py) and needs nothing the ORM adds.
"""

import base64
import json
import logging
import threading
import time

from eventbus import connection as broker
from sqlalchemy import and_, bindparam, delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from app.extensions import db, is_mysql
from app.messaging.contract import PRODUCT_LIKED, PRODUCT_UNLIKED
from app.messaging.outbox import enqueue_core
from app.models import OutboxEvent, Product, ProductLike, WorkerHeartbeat, utcnow

logger = logging.getLogger(__name__)

CONSUMER_HEARTBEAT_NAME = "main-consumer"
CONSUMER_MAX_SILENCE_SECONDS = 30
OUTBOX_MAX_AGE_SECONDS = 60
BROKER_CHECK_TTL_SECONDS = 2.0

_product = Product.__table__
_like = ProductLike.__table__
_outbox = OutboxEvent.__table__


class ProductNotFound(Exception):
    """The product does not exist in the replica or is a tombstone."""


class AlreadyLiked(Exception):
    """This shopper already likes this product."""


class NotLiked(Exception):
    """This shopper does not like this product."""


# Statements are built once; the compiled form is then reused from SQLAlchemy's cache.
_BUMP_LIKES = (
    update(_product)
    .where(and_(_product.c.id == bindparam("pid"), _product.c.deleted.is_(False)))
    .values(likes=_product.c.likes + bindparam("delta"), likes_seq=_product.c.likes_seq + 1)
)
_BUMP_LIKES_RETURNING = _BUMP_LIKES.returning(_product.c.likes, _product.c.likes_seq)
_INSERT_LIKE = insert(_like)
_DELETE_LIKE = delete(_like).where(
    and_(_like.c.shopper_id == bindparam("sid"), _like.c.product_id == bindparam("pid"))
)
_READ_COUNTS = select(_product.c.likes, _product.c.likes_seq).where(_product.c.id == bindparam("pid"))

# On MySQL/MariaDB the like path's statements go to the driver (PyMySQL, pyformat) as SQL strings
# through Connection.exec_driver_sql: SQLAlchemy still owns the pooled connection, the
# transaction and the translation of errors (IntegrityError, disconnects), but skips compiling,
# bind and result processing - a third of the like transaction's CPU (tests/load/bench_likes.py).
# MySQL/MariaDB have no UPDATE ... RETURNING. LAST_INSERT_ID(expr) hands expr back in the OK
# packet of the UPDATE itself (cursor.lastrowid), so the new (seq, likes) pair comes back without
# a SELECT round trip. It sits in the FIRST assignment so every column it reads is the old value,
# whether or not SIMULTANEOUS_ASSIGNMENT is on. Both counts stay below 2**31.
_SEQ_SHIFT = 32
_BUMP_LIKES_MYSQL = (
    "UPDATE product SET"
    " likes = likes + %(delta)s"
    " + 0 * CAST(LAST_INSERT_ID((likes_seq + 1) * 4294967296 + likes + %(delta)s) AS SIGNED),"
    " likes_seq = likes_seq + 1, updated_at = %(now)s"
    " WHERE id = %(pid)s AND deleted = 0"
)
_INSERT_LIKE_MYSQL = (
    "INSERT INTO product_like (shopper_id, product_id, created_at) VALUES (%(sid)s, %(pid)s, %(now)s)"
)
_DELETE_LIKE_MYSQL = "DELETE FROM product_like WHERE shopper_id = %(sid)s AND product_id = %(pid)s"


def _bump_likes(conn, product_id, delta, now):
    """Add delta to a live product's likes and advance likes_seq; return (likes, seq) or None if absent."""
    if is_mysql(conn):
        result = conn.exec_driver_sql(_BUMP_LIKES_MYSQL, {"pid": product_id, "delta": delta, "now": now})
        if result.rowcount == 0:
            return None
        packed = result.lastrowid
        return packed & ((1 << _SEQ_SHIFT) - 1), packed >> _SEQ_SHIFT
    if conn.dialect.update_returning:
        row = conn.execute(_BUMP_LIKES_RETURNING, {"pid": product_id, "delta": delta}).first()
        return None if row is None else (row.likes, row.likes_seq)
    if conn.execute(_BUMP_LIKES, {"pid": product_id, "delta": delta}).rowcount == 0:
        return None
    return tuple(conn.execute(_READ_COUNTS, {"pid": product_id}).one())


def _insert_like(conn, shopper_id, product_id, now):
    if is_mysql(conn):
        conn.exec_driver_sql(_INSERT_LIKE_MYSQL, {"sid": shopper_id, "pid": product_id, "now": now})
    else:
        conn.execute(_INSERT_LIKE, {"shopper_id": shopper_id, "product_id": product_id, "created_at": now})


def _delete_like(conn, shopper_id, product_id):
    """Delete shopper_id's like of product_id; return how many rows went (0 or 1)."""
    if is_mysql(conn):
        return conn.exec_driver_sql(_DELETE_LIKE_MYSQL, {"sid": shopper_id, "pid": product_id}).rowcount
    return conn.execute(_DELETE_LIKE, {"sid": shopper_id, "pid": product_id}).rowcount


class BadListQuery(ValueError):
    """A gallery list parameter is malformed; args: (parameter, message)."""


# The gallery's orders: keyset columns (value getter, descending) and the cursor's fields.
GALLERY_SORTS = ("id", "newest", "liked")
MAX_GALLERY_LIST = 1000


def _encode_cursor(sort, row):
    values = [sort, row.id] if sort != "liked" else [sort, row.likes, row.id]
    return base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode_cursor(cursor, sort):
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (ValueError, TypeError):
        raise BadListQuery("cursor", "Not a cursor this list gave out: start again without it.") from None
    expected = 3 if sort == "liked" else 2
    if (
        not isinstance(values, list)
        or len(values) != expected
        or values[0] != sort
        or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**63 for v in values[1:])
    ):
        raise BadListQuery("cursor", "Not a cursor of this sort order: start again without it.")
    return values[1:]


def list_products(shopper_id, search="", sort="id", limit=None, cursor=None):
    """Return (products, next cursor or None, capped) for the gallery.

    Live products whose title contains search (case-insensitive), in sort order: "id" (the
    default), "newest" (highest id first: admin's ids grow) or "liked" (most likes first, then
    newest). limit/cursor page through with a keyset (no OFFSET scan); without limit the list
    stops at MAX_GALLERY_LIST and capped says there is more.
    """
    if sort not in GALLERY_SORTS:
        raise BadListQuery("sort", f"Must be one of {', '.join(GALLERY_SORTS)}.")
    liked = (
        select(_like.c.product_id)
        .where(and_(_like.c.shopper_id == shopper_id, _like.c.product_id == _product.c.id))
        .exists()
    )
    query = select(
        _product.c.id,
        _product.c.title,
        _product.c.image,
        _product.c.likes,
        _product.c.version,
        _product.c.likes_seq,
        liked.label("liked"),
    ).where(_product.c.deleted.is_(False))
    if search:
        # Escaped: a % or _ in the search is a character, not a wildcard.
        pattern = "%" + search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(func.lower(_product.c.title).like(pattern, escape="\\"))
    after = _decode_cursor(cursor, sort) if cursor is not None else None
    if sort == "id":
        query = query.order_by(_product.c.id)
        if after is not None:
            query = query.where(_product.c.id > after[0])
    elif sort == "newest":
        query = query.order_by(_product.c.id.desc())
        if after is not None:
            query = query.where(_product.c.id < after[0])
    else:
        query = query.order_by(_product.c.likes.desc(), _product.c.id.desc())
        if after is not None:
            likes, last_id = after
            query = query.where(
                (_product.c.likes < likes) | and_(_product.c.likes == likes, _product.c.id < last_id)
            )
    size = limit or MAX_GALLERY_LIST
    with db.engine.connect() as conn:
        rows = conn.execute(query.limit(size + 1)).all()
    more = len(rows) > size
    rows = rows[:size]
    next_cursor = _encode_cursor(sort, rows[-1]) if more and limit else None
    products = [
        {
            "id": r.id,
            "title": r.title,
            "image": r.image,
            "likes": r.likes,
            "liked": bool(r.liked),
            # The positions the replicas compare at (admin's check_drift): admin's product version,
            # and the sequence number of this count.
            "version": r.version,
            "likes_seq": r.likes_seq,
        }
        for r in rows
    ]
    return products, next_cursor, more and not limit


def like(shopper_id, product_id):
    """Record shopper_id's like of product_id and its outbox event in one transaction."""
    with db.engine.connect() as conn, conn.begin():
        now = utcnow()
        # Lock the product row first (like and unlike both do), so the two never deadlock.
        counts = _bump_likes(conn, product_id, 1, now)
        if counts is None:
            raise ProductNotFound(product_id)
        likes, seq = counts
        try:
            _insert_like(conn, shopper_id, product_id, now)
        except IntegrityError as exc:
            # The product row exists and is locked, so the only constraint left is (shopper, product).
            raise AlreadyLiked(product_id) from exc
        enqueue_core(conn, PRODUCT_LIKED, {"product_id": product_id, "likes": likes, "seq": seq})
    return {"id": product_id, "likes": likes, "liked": True}


def unlike(shopper_id, product_id):
    """Remove shopper_id's like of product_id and record the outbox event in one transaction."""
    with db.engine.connect() as conn, conn.begin():
        counts = _bump_likes(conn, product_id, -1, utcnow())
        if counts is None:
            raise ProductNotFound(product_id)
        if _delete_like(conn, shopper_id, product_id) == 0:
            # Leaving the block rolls the counter change back.
            raise NotLiked(product_id)
        likes, seq = counts
        enqueue_core(conn, PRODUCT_UNLIKED, {"product_id": product_id, "likes": likes, "seq": seq})
    return {"id": product_id, "likes": likes, "liked": False}


# --- readiness -----------------------------------------------------------------------------


def check_database():
    """Return the database check: can we run SELECT 1."""
    try:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return {"ok": True}
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        logger.warning("readiness: database check failed: %s", type(exc).__name__)
        return {"ok": False, "error": type(exc).__name__}


def check_outbox(now=None):
    """Return the outbox check: pending rows and the age of the oldest (not ok above 60 s)."""
    now = now or utcnow()
    try:
        with db.engine.connect() as conn:
            pending, oldest = conn.execute(
                select(func.count(), func.min(_outbox.c.created_at)).where(_outbox.c.published_at.is_(None))
            ).one()
    except Exception as exc:  # noqa: BLE001
        return {
            "ok": False,
            "pending": None,
            "oldest_age_seconds": None,
            "error": type(exc).__name__,
        }
    age = max(0.0, (now - oldest).total_seconds()) if oldest else 0.0
    return {
        "ok": age <= OUTBOX_MAX_AGE_SECONDS,
        "pending": int(pending),
        "oldest_age_seconds": round(age, 3),
    }


def check_consumer(now=None):
    """Return the consumer check: main-consumer's heartbeat is at most 30 s old."""
    now = now or utcnow()
    try:
        with db.engine.connect() as conn:
            last_seen = conn.execute(
                select(WorkerHeartbeat.__table__.c.last_seen).where(
                    WorkerHeartbeat.__table__.c.name == CONSUMER_HEARTBEAT_NAME
                )
            ).scalar()
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "last_seen_age_seconds": None, "error": type(exc).__name__}
    if last_seen is None:
        return {"ok": False, "last_seen_age_seconds": None}
    age = max(0.0, (now - last_seen).total_seconds())
    return {
        "ok": age <= CONSUMER_MAX_SILENCE_SECONDS,
        "last_seen_age_seconds": round(age, 3),
    }


_broker_cache = {}
_broker_lock = threading.Lock()


def check_broker(url, ca_file=None, ttl=BROKER_CHECK_TTL_SECONDS):
    """Return the broker check: can we open an AMQP connection (result cached for ttl seconds)."""
    key = (url, ca_file)
    cached = _broker_cache.get(key)
    if cached and time.monotonic() - cached[0] < ttl:
        return dict(cached[1])
    with _broker_lock:
        result = _connect_broker(url, ca_file)
        _broker_cache[key] = (time.monotonic(), result)
    return dict(result)


def _connect_broker(url, ca_file):
    try:
        # Ready when any of RABBITMQ_URL's addresses answers (each gets its own 2 s).
        params = broker.parameters(
            url, ca_file, socket_timeout=1.5, blocked_connection_timeout=1.5, stack_timeout=2
        )
    except Exception as exc:  # noqa: BLE001 - a malformed URL is "broker not ready", named by its class
        return {"ok": False, "error": type(exc).__name__}
    result = broker.probe(params)
    if not result["ok"]:
        logger.warning("readiness: broker check failed: %s", result["error"])
    return result


def readiness(config):
    """Return (ready, checks) for /ready: database, broker, outbox and consumer."""
    checks = {"database": check_database()}
    checks["broker"] = check_broker(config["RABBITMQ_URL"], config.get("RABBITMQ_CA_FILE"))
    checks["outbox"] = check_outbox()
    checks["consumer"] = check_consumer()
    return all(c["ok"] for c in checks.values()), checks
