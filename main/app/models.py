"""Tables of the main service: the product replica, likes, and the messaging tables."""

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql

from app.extensions import db

# Microsecond precision on MariaDB too (plain DATETIME drops fractions) so ages and order are exact.
Timestamp = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
# BIGINT autoincrement on MariaDB; SQLite only autoincrements INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow():
    """Return the current UTC time as a naive datetime (all stored times are naive UTC)."""
    return datetime.now(UTC).replace(tzinfo=None)


class Product(db.Model):
    """Replica of an admin product; deleted=True is a tombstone that keeps its version."""

    __tablename__ = "product"
    # The gallery's "most liked" order (services.list_products) reads this index backwards.
    __table_args__ = (Index("ix_product_likes_id", "likes", "id"),)

    # The id is admin's; never generated here.
    id = db.Column(BigId, primary_key=True, autoincrement=False)
    title = db.Column(String(200), nullable=False, default="")
    image = db.Column(String(500), nullable=False, default="")
    version = db.Column(Integer, nullable=False, default=0)
    likes = db.Column(Integer, nullable=False, default=0, server_default="0")
    likes_seq = db.Column(Integer, nullable=False, default=0, server_default="0")
    deleted = db.Column(Boolean, nullable=False, default=False, server_default="0")
    updated_at = db.Column(Timestamp, nullable=False, default=utcnow, onupdate=utcnow)


class ProductLike(db.Model):
    """One shopper's like of one product; the unique constraint makes a second like impossible."""

    __tablename__ = "product_like"
    __table_args__ = (UniqueConstraint("shopper_id", "product_id", name="uq_product_like_shopper_product"),)

    id = db.Column(BigId, primary_key=True, autoincrement=True)
    shopper_id = db.Column(String(36), nullable=False)
    product_id = db.Column(
        BigId,
        ForeignKey("product.id", name="fk_product_like_product"),
        nullable=False,
        index=True,
    )
    created_at = db.Column(Timestamp, nullable=False, default=utcnow)


class OutboxEvent(db.Model):
    """An event written in the same transaction as the change it announces; the relay publishes it."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_published_at_id", "published_at", "id"),)

    id = db.Column(BigId, primary_key=True, autoincrement=True)
    event_id = db.Column(String(36), nullable=False, unique=True)
    event_type = db.Column(String(64), nullable=False)
    payload = db.Column(Text, nullable=False)
    headers = db.Column(Text, nullable=False, default="{}")
    created_at = db.Column(Timestamp, nullable=False, default=utcnow)
    available_at = db.Column(Timestamp, nullable=False, default=utcnow)
    attempts = db.Column(Integer, nullable=False, default=0, server_default="0")
    last_error = db.Column(Text, nullable=True)
    published_at = db.Column(Timestamp, nullable=True)


class InboxEvent(db.Model):
    """The id of every event applied, so a redelivered event is recognised and skipped."""

    __tablename__ = "inbox"
    # Pruning deletes by age: without it every prune scans the whole table.
    __table_args__ = (Index("ix_inbox_received_at", "received_at"),)

    message_id = db.Column(String(36), primary_key=True)
    event_type = db.Column(String(64), nullable=False)
    received_at = db.Column(Timestamp, nullable=False, default=utcnow)


class WorkerHeartbeat(db.Model):
    """Last sign of life of a background worker (main-consumer, main-relay)."""

    __tablename__ = "worker_heartbeat"

    name = db.Column(String(64), primary_key=True)
    last_seen = db.Column(Timestamp, nullable=False, default=utcnow)


# Up to 16 MiB on MariaDB (TEXT stops at 64 KiB, less than an archived body may take); TEXT elsewhere.
LongText = Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")


class DeadLetterAudit(db.Model):
    """Who retried, discarded or archived which dead letter, when and why; an archive keeps the message."""

    __tablename__ = "dead_letter_audit"

    id = db.Column(BigId, primary_key=True, autoincrement=True)
    action = db.Column(String(16), nullable=False)  # retry, discard or archive
    # A poison message may have no id or type at all: they are what the broker had, or null.
    message_id = db.Column(String(255), nullable=True, index=True)
    event_type = db.Column(String(255), nullable=True)
    fingerprint = db.Column(String(64), nullable=True)
    actor = db.Column(String(150), nullable=False)  # the operator token's sub (admin's username)
    reason = db.Column(String(500), nullable=True)
    at = db.Column(Timestamp, nullable=False, default=utcnow)
    # Archive only: the body as text and the AMQP headers (with the broker's x-death) as JSON.
    body = db.Column(LongText, nullable=True)
    headers = db.Column(LongText, nullable=True)
