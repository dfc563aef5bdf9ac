"""Prometheus metrics of the consumer and relay processes (the same names as admin's: dashboards query them).

They live in their own registry: the web process's default registry never sees them, so the
names cannot clash with anything the web side defines, and each worker serves only its own.
"""

from __future__ import annotations

import logging

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    start_http_server,
)

from app import db_metrics
from app.messaging import contract

logger = logging.getLogger(__name__)

REGISTRY = CollectorRegistry(auto_describe=True)
# A worker serves its own registry; the database metrics and the process's own (CPU, memory, open
# files) are what the web process exports too.
for _collector in db_metrics.COLLECTORS:
    REGISTRY.register(_collector)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

_KNOWN_TYPES = frozenset(contract.PUBLISHED) | frozenset(contract.CONSUMED)

EVENTS_PUBLISHED = Counter("events_published", "Events confirmed by the broker", ["type"], registry=REGISTRY)
EVENTS_CONSUMED = Counter("events_consumed", "Events applied and acknowledged", ["type"], registry=REGISTRY)
EVENTS_DUPLICATES = Counter(
    "events_duplicates",
    "Redelivered events skipped by the inbox",
    ["type"],
    registry=REGISTRY,
)
EVENTS_DEAD_LETTERED = Counter(
    "events_dead_lettered",
    "Events rejected to the dead-letter queue",
    ["type", "reason"],
    registry=REGISTRY,
)
OUTBOX_PENDING = Gauge("outbox_pending", "Outbox rows not yet published", registry=REGISTRY)
OUTBOX_OLDEST_AGE = Gauge(
    "outbox_oldest_age_seconds",
    "Age of the oldest unpublished outbox row",
    registry=REGISTRY,
)
EVENT_APPLY_AGE = Histogram(
    "event_apply_age_seconds",
    "Time from occurred_at to the moment the consumer applied the event",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600),  # 2 s: the freshness SLO
    registry=REGISTRY,
)
CONSUMER_UP = Gauge("consumer_up", "1 while the consumer is connected and consuming", registry=REGISTRY)
RELAY_CONFIRM_LATENCY = Histogram(
    "relay_confirm_latency_seconds",
    "Time from publishing a batch to receiving all its confirms",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)


DEAD_LETTER_REASONS = (*contract.REJECT_CODES, "handler_error")

# Every label set that can occur exists from the start, so a healthy system shows 0, not "No data".
for _type in contract.PUBLISHED:
    EVENTS_PUBLISHED.labels(type=_type)
for _type in contract.CONSUMED:
    EVENTS_CONSUMED.labels(type=_type)
    EVENTS_DUPLICATES.labels(type=_type)
for _type in (*contract.CONSUMED, "unknown"):
    for _reason in DEAD_LETTER_REASONS:
        EVENTS_DEAD_LETTERED.labels(type=_type, reason=_reason)


def type_label(event_type: object) -> str:
    """Return event_type when it is a known type, else "unknown" (keeps label cardinality bounded)."""
    return event_type if isinstance(event_type, str) and event_type in _KNOWN_TYPES else "unknown"


def serve(port: int) -> None:
    """Serve /metrics on port (0 = off); a busy port is logged, not fatal."""
    if not port:
        return
    try:
        start_http_server(port, registry=REGISTRY)
    except OSError:
        logger.warning("metrics port %s is not available; metrics are off", port, exc_info=True)
        return
    logger.info("serving metrics on port %s", port)
