"""Why a message was dead-lettered: the failure headers a consumer writes, and how to read them back.

A consumer that gives up on a message publishes it to the dead-letter exchange itself, with these
headers (README: Dead letters). A message the broker dead-lettered on its own (the delivery limit,
or the consumer's fallback reject) carries RabbitMQ's `x-death` instead; `read` understands both,
so the dead-letter workbench groups them alike.

The fingerprint groups failures that have one cause: the exception's type and the first frame of
application code that raised it (module and function, not the line, so an unrelated edit above it
does not split a group), as Wolverine and NServiceBus group theirs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import socket
import sys
import sysconfig
import traceback
from dataclasses import dataclass
from pathlib import Path

REASON = "x-failure-reason"
EXCEPTION_TYPE = "x-failure-exception-type"
EXCEPTION_MESSAGE = "x-failure-exception-message"
WHERE = "x-failure-where"
FINGERPRINT = "x-failure-fingerprint"
ATTEMPTS = "x-failure-attempts"
FIRST_AT = "x-failure-first-at"
LAST_AT = "x-failure-last-at"
HOST = "x-failure-host"
QUEUE = "x-failure-queue"
HEADERS = (
    REASON,
    EXCEPTION_TYPE,
    EXCEPTION_MESSAGE,
    WHERE,
    FINGERPRINT,
    ATTEMPTS,
    FIRST_AT,
    LAST_AT,
    HOST,
    QUEUE,
)
MESSAGE_LIMIT = 1000

# Code that is not the application's: the standard library, installed packages, and this package
# (the consumer loop calls every handler, so its frames say nothing about the cause).
_NOT_APPLICATION = tuple(
    str(Path(p).resolve())
    for p in {
        sysconfig.get_paths()["stdlib"],
        sysconfig.get_paths()["purelib"],
        sysconfig.get_paths()["platlib"],
        str(Path(__file__).resolve().parent),
    }
)


def _text(value) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return None if value is None else str(value)


def fingerprint_of(*parts: str | None) -> str:
    """Return 16 hex characters naming the group of failures with these parts."""
    return hashlib.sha256("|".join(p or "" for p in parts).encode()).hexdigest()[:16]


def _is_application(filename: str) -> bool:
    try:
        path = str(Path(filename).resolve())
    except (OSError, RuntimeError):
        return False
    return (
        not path.startswith(_NOT_APPLICATION) and "site-packages" not in path and not filename.startswith("<")
    )


def where(exc: BaseException) -> str:
    """Return `module:function` of the innermost frame of application code in exc's traceback ("" if none)."""
    frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ else []
    for frame in reversed(frames):
        if _is_application(frame.filename):
            module = _module_name(frame.filename)
            return f"{module}:{frame.name}"
    return ""


def _module_name(filename: str) -> str:
    path = Path(filename).resolve()
    best = None
    for root in sys.path:
        try:
            relative = path.relative_to(Path(root or ".").resolve())
        except (ValueError, OSError):
            continue
        if best is None or len(relative.parts) < len(best.parts):
            best = relative
    dotted = (best or Path(path.name)).with_suffix("")
    return ".".join(dotted.parts)


def now_iso() -> str:
    """Return the current time as ISO-8601 UTC."""
    return dt.datetime.now(dt.UTC).isoformat()


def count_of(value) -> int:
    """Return a header value as a count: a non-negative int, 0 for anything else."""
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0


def failure_headers(
    properties,
    *,
    reason: str,
    queue: str,
    exc: BaseException | None = None,
    exception_type: str | None = None,
    message: str | None = None,
    where_: str | None = None,
) -> dict:
    """Return the message's headers with this failure recorded (earlier failures of a retried message kept).

    `attempts` counts every delivery that failed: the earlier attempts a retried message carries,
    plus this delivery and the redeliveries the queue counted (`x-delivery-count`).
    """
    headers = dict(properties.headers or {})
    if exc is not None:
        exception_type = exception_type or type(exc).__name__
        message = message if message is not None else str(exc)
        where_ = where_ if where_ is not None else where(exc)
    earlier = count_of(headers.get(ATTEMPTS))
    this_round = count_of(headers.get("x-delivery-count")) + 1
    now = now_iso()
    headers.update(
        {
            REASON: reason,
            EXCEPTION_TYPE: exception_type or "",
            EXCEPTION_MESSAGE: (message or "")[:MESSAGE_LIMIT],
            WHERE: where_ or "",
            FINGERPRINT: fingerprint_of(exception_type, where_),
            ATTEMPTS: earlier + this_round,
            FIRST_AT: _text(headers.get(FIRST_AT)) or now,
            LAST_AT: now,
            HOST: socket.gethostname(),
            QUEUE: queue,
        }
    )
    return headers


@dataclass(frozen=True)
class Failure:
    """What is known of a dead letter's failure, from our headers or the broker's `x-death`."""

    source: str  # "consumer" (our headers) or "broker" (x-death only)
    reason: str | None
    exception_type: str | None
    exception_message: str | None
    where: str | None
    fingerprint: str
    attempts: int
    first_at: str | None
    last_at: str | None
    host: str | None
    queue: str | None

    def as_dict(self) -> dict:
        """Return the fields under the names the dead-letter API uses."""
        return {
            "source": self.source,
            "reason": self.reason,
            "exception_type": self.exception_type,
            "exception_message": self.exception_message,
            "where": self.where,
            "fingerprint": self.fingerprint,
            "attempts": self.attempts,
            "first_failed_at": self.first_at,
            "last_failed_at": self.last_at,
            "host": self.host,
        }


def _iso(value) -> str | None:
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value, dt.UTC).isoformat()
    return _text(value)


def _deaths(headers: dict) -> list[dict]:
    deaths = headers.get("x-death")
    return [d for d in deaths if isinstance(d, dict)] if isinstance(deaths, list) else []


def read(headers: dict | None, *, delivery_limit: int | None = None) -> Failure:
    """Return the failure a dead letter's headers describe; the broker's `x-death` when ours are absent.

    When the broker dead-lettered a message after a consumer had (a retried message that then hit
    the delivery limit), the broker's newer death wins for reason and time; the history is kept.
    A message dead-lettered for the delivery limit was delivered `delivery_limit + 1` times.
    """
    headers = headers or {}
    deaths = _deaths(headers)
    latest = deaths[0] if deaths else {}
    ours = _text(headers.get(FINGERPRINT))
    broker_reason = _text(latest.get("reason")) or _text(headers.get("x-last-death-reason"))
    broker_queue = _text(latest.get("queue")) or _text(headers.get("x-last-death-queue"))
    broker_time = _iso(latest.get("time"))
    if ours and not (deaths and _newer(broker_time, _text(headers.get(LAST_AT)))):
        return Failure(
            source="consumer",
            reason=_text(headers.get(REASON)),
            exception_type=_text(headers.get(EXCEPTION_TYPE)) or None,
            exception_message=_text(headers.get(EXCEPTION_MESSAGE)) or None,
            where=_text(headers.get(WHERE)) or None,
            fingerprint=ours,
            attempts=count_of(headers.get(ATTEMPTS)),
            first_at=_text(headers.get(FIRST_AT)),
            last_at=_text(headers.get(LAST_AT)),
            host=_text(headers.get(HOST)) or None,
            queue=_text(headers.get(QUEUE)),
        )
    first_death = deaths[-1] if deaths else {}
    return Failure(
        source="broker",
        reason=broker_reason,
        exception_type=None,
        exception_message=None,
        where=None,
        fingerprint=fingerprint_of("broker", broker_reason, broker_queue),
        attempts=count_of(headers.get(ATTEMPTS))
        + (
            delivery_limit + 1
            if broker_reason == "delivery_limit" and delivery_limit
            else count_of(latest.get("count"))
        ),
        first_at=_text(headers.get(FIRST_AT)) or _iso(first_death.get("time")) or broker_time,
        last_at=broker_time,
        host=None,
        queue=broker_queue,
    )


def _newer(broker_time: str | None, ours: str | None) -> bool:
    if not broker_time or not ours:
        return bool(broker_time) and not ours
    try:
        return dt.datetime.fromisoformat(broker_time) > dt.datetime.fromisoformat(ours)
    except ValueError:
        return False
