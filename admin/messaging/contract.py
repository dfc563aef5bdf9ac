"""Admin's half of the messaging contract: the events it publishes and the events it consumes.

Standard library only, so tests/contract can load this module next to main's contract.py and prove
that what one side builds the other side parses. A breaking change is a new schema version,
consumed before it is produced.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from typing import Any

PRODUCER = "admin"
SCHEMA_VERSION = 1

# Event types (routing key == type).
PRODUCT_CREATED = "product.created"
PRODUCT_UPDATED = "product.updated"
PRODUCT_DELETED = "product.deleted"
CATALOGUE_SNAPSHOT = "catalogue.snapshot"
PRODUCT_LIKED = "product.liked"
PRODUCT_UNLIKED = "product.unliked"
PRODUCT_LIKES_COUNTED = "product.likes_counted"

TITLE_MAX = 200
IMAGE_MAX = 500

# Field rules: name -> (kind, options), the same shape as main's contract.py so tests/contract can
# compare the tables. Kinds: "id" (int > 0), "count" (int >= 0), "version" (int >= 1),
# "str" (options: min, max length), "int_list" (list of ints > 0). bool never counts as an int.
FieldRules = dict[str, tuple[str, dict[str, int]]]

_PRODUCT_FIELDS: FieldRules = {
    "id": ("id", {}),
    "title": ("str", {"min": 1, "max": TITLE_MAX}),
    "image": ("str", {"min": 0, "max": IMAGE_MAX}),
    "version": ("version", {}),
}
_LIKES_FIELDS: FieldRules = {
    "product_id": ("id", {}),
    "likes": ("count", {}),
    "seq": ("count", {}),
}

# {event type: {schema version: field rules}} -- what admin builds (producer "admin").
# Version 2 of a state event adds `force`: the state of the source, sent by a resync, that the
# replica takes whatever its own version or seq says (after a database restored from a backup,
# the replica's counter may be ahead of its source's). Consumers accept it before producers send it.
_FORCED = {"force": ("bool", {})}
PUBLISHED: dict[str, dict[int, FieldRules]] = {
    PRODUCT_CREATED: {1: _PRODUCT_FIELDS},
    PRODUCT_UPDATED: {1: _PRODUCT_FIELDS, 2: {**_PRODUCT_FIELDS, **_FORCED}},
    PRODUCT_DELETED: {1: {"id": ("id", {}), "version": ("version", {})}},
    CATALOGUE_SNAPSHOT: {1: {"ids": ("int_list", {}), "max_id": ("count", {})}},
}
# {event type: {schema version: field rules}} -- what admin parses (producer "main").
CONSUMED: dict[str, dict[int, FieldRules]] = {
    PRODUCT_LIKED: {1: _LIKES_FIELDS},
    PRODUCT_UNLIKED: {1: _LIKES_FIELDS},
    PRODUCT_LIKES_COUNTED: {1: _LIKES_FIELDS, 2: {**_LIKES_FIELDS, **_FORCED}},
}
PUBLISHES = PUBLISHED  # aliases, same objects
CONSUMES = CONSUMED
# Who produces what admin consumes; a consumed event claiming another producer is rejected.
CONSUMED_FROM = "main"

# The InvalidEvent codes: why a message can never be applied (also a metric label).
REJECT_CODES = (
    "bad_json",
    "bad_envelope",
    "mismatch",
    "unknown_type",
    "unsupported_version",
    "bad_data",
    "missing_message_id",
)

_ENVELOPE_KEYS = frozenset({"id", "type", "version", "occurred_at", "producer", "data"})


class InvalidEvent(ValueError):
    """An event that breaks the contract and can never be applied.

    `reason` explains it to a human; `code` is a short label fit for a metric
    (bad_json, bad_envelope, mismatch, unknown_type, unsupported_version, bad_data,
    missing_message_id).
    """

    def __init__(
        self,
        reason: str,
        code: str = "bad_data",
        event_id: str | None = None,
        event_type: str | None = None,
    ):
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.event_id = event_id
        self.event_type = event_type


@dataclasses.dataclass(frozen=True)
class Event:
    """A parsed, validated incoming event."""

    id: str
    type: str
    version: int
    occurred_at: dt.datetime
    producer: str
    data: dict[str, Any]


def _is_int(value: Any) -> bool:
    # bool is an int subclass; True must not pass as a product id.
    return isinstance(value, int) and not isinstance(value, bool)


def _check_field(name: str, kind: str, opts: dict[str, int], value: Any) -> None:
    if kind in ("id", "count", "version"):
        low = {"id": 1, "count": 0, "version": 1}[kind]
        if not _is_int(value) or value < low:
            raise InvalidEvent(f"data.{name} must be an integer >= {low}")
    elif kind == "str":
        if not isinstance(value, str):
            raise InvalidEvent(f"data.{name} must be a string")
        low, high = opts.get("min", 0), opts.get("max", 1 << 30)
        if not low <= len(value) <= high:
            raise InvalidEvent(f"data.{name} length must be {low}..{high}")
    elif kind == "int_list":
        if not isinstance(value, list) or not all(_is_int(v) and v > 0 for v in value):
            raise InvalidEvent(f"data.{name} must be a list of integers > 0")
    elif kind == "bool":
        if not isinstance(value, bool):
            raise InvalidEvent(f"data.{name} must be true or false")
    else:  # a typo in the tables above, not a bad message
        raise AssertionError(kind)


def validate_data(
    table: dict[str, dict[int, FieldRules]],
    event_type: str,
    version: int,
    data: Any,
    *,
    allow_extra: bool = True,
) -> dict[str, Any]:
    """Check data against the rules of event_type/version in table; return only the known fields."""
    versions = table.get(event_type)
    if versions is None:
        raise InvalidEvent(f"unknown event type {event_type!r}", "unknown_type")
    fields = versions.get(version)
    if fields is None:
        raise InvalidEvent(f"unsupported version {version!r} of {event_type}", "unsupported_version")
    if not isinstance(data, dict):
        raise InvalidEvent("data must be an object")
    missing = sorted(set(fields) - set(data))
    if missing:
        raise InvalidEvent(f"data misses {', '.join(missing)}")
    extra = sorted(set(data) - set(fields))
    if extra and not allow_extra:
        raise InvalidEvent(f"data has unexpected fields {', '.join(extra)}")
    for name, (kind, opts) in fields.items():
        _check_field(name, kind, opts, data[name])
    return {name: data[name] for name in fields}


def format_time(moment: dt.datetime) -> str:
    """Format an aware datetime as UTC ISO 8601 with microseconds and a Z suffix."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: Any) -> dt.datetime:
    """Parse an ISO 8601 timestamp with an offset (Z allowed) into an aware UTC datetime."""
    if not isinstance(text, str):
        raise TypeError("not a string")
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError("no UTC offset")
    return moment.astimezone(dt.UTC)  # OverflowError when the UTC time leaves years 1..9999


def envelope(
    event_type: str, data: dict, *, occurred_at: dt.datetime | None = None, version: int = SCHEMA_VERSION
) -> dict:
    """Build the envelope of an event admin publishes, with a new id; raise InvalidEvent on bad data."""
    if event_type not in PUBLISHED:
        raise InvalidEvent(f"admin does not publish {event_type!r}", "unknown_type")
    try:
        clean = validate_data(PUBLISHED, event_type, version, data, allow_extra=False)
    except InvalidEvent as exc:
        exc.event_type = event_type
        raise
    return {
        "id": str(uuid.uuid4()),
        "type": event_type,
        "version": version,
        "occurred_at": format_time(occurred_at or dt.datetime.now(dt.UTC)),
        "producer": PRODUCER,
        "data": clean,
    }


def dumps(env: dict) -> str:
    """Serialise an envelope to the compact JSON text stored in the outbox and sent as the body."""
    return json.dumps(env, separators=(",", ":"), ensure_ascii=False)


def _check_uuid(value: Any) -> None:
    if not isinstance(value, str):
        raise InvalidEvent("id must be a string", "bad_envelope")
    try:
        uuid.UUID(value)
    except ValueError:
        raise InvalidEvent("id is not a UUID", "bad_envelope") from None


def parse(body: bytes, message_id: str | None = None, amqp_type: str | None = None) -> Event:
    """Decode and validate a consumed message body; raise InvalidEvent when it breaks the contract.

    message_id / amqp_type are the AMQP properties; when given they must match the envelope.
    Unknown extra data fields are dropped (tolerant reader); missing or mistyped ones are rejected.
    Whatever a body makes the decoder or a check raise is InvalidEvent: one dead letter, never a
    consumer that crashes on the same message again and again.
    """
    try:
        return _parse(body, message_id, amqp_type)
    except InvalidEvent:
        raise
    except Exception as exc:  # noqa: BLE001 - any other failure is this message's, not the consumer's
        raise InvalidEvent(
            f"unparseable ({type(exc).__name__})", "bad_envelope", message_id, amqp_type
        ) from None


def _parse(body: bytes, message_id: str | None, amqp_type: str | None) -> Event:
    try:
        raw = json.loads(body.decode("utf-8") if isinstance(body, bytes | bytearray) else body)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InvalidEvent("body is not UTF-8 JSON", "bad_json", message_id, amqp_type) from None
    if not isinstance(raw, dict):
        raise InvalidEvent("body is not a JSON object", "bad_json", message_id, amqp_type)
    event_id = raw["id"] if isinstance(raw.get("id"), str) else message_id
    event_type = raw["type"] if isinstance(raw.get("type"), str) else amqp_type
    try:
        missing = sorted(_ENVELOPE_KEYS - set(raw))
        if missing:
            raise InvalidEvent(f"envelope misses {', '.join(missing)}", "bad_envelope")
        _check_uuid(raw["id"])
        if message_id is not None and message_id != raw["id"]:
            raise InvalidEvent("message_id does not match envelope id", "mismatch")
        if not isinstance(raw["type"], str):
            raise InvalidEvent("type must be a string", "bad_envelope")
        if amqp_type is not None and amqp_type != raw["type"]:
            raise InvalidEvent("AMQP type does not match envelope type", "mismatch")
        version = raw["version"]
        if not _is_int(version):
            raise InvalidEvent("version must be an integer", "bad_envelope")
        try:
            occurred_at = parse_time(raw["occurred_at"])
        except (TypeError, ValueError, OverflowError):
            raise InvalidEvent("occurred_at is not an ISO 8601 time with a zone", "bad_envelope") from None
        data = validate_data(CONSUMED, raw["type"], version, raw["data"])
        if raw["producer"] != CONSUMED_FROM:
            raise InvalidEvent(
                f"producer {raw['producer']!r} does not publish {raw['type']}",
                "bad_envelope",
            )
    except InvalidEvent as exc:
        exc.event_id, exc.event_type = event_id, event_type
        raise
    return Event(
        id=raw["id"],
        type=raw["type"],
        version=version,
        occurred_at=occurred_at,
        producer=raw["producer"],
        data=data,
    )
