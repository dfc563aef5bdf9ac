"""The relay's and the consumer's Prometheus metrics: the same names in both services.

The dashboards and alert rules query them by name (README: Monitoring). Every label set that can
occur is created at once, so a healthy system shows 0 rather than "No data".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# 2 s is the freshness SLO's threshold (grafana-prometheus/prometheus/recording.yml).
APPLY_AGE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600)
CONFIRM_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
UNKNOWN = "unknown"


@dataclass(frozen=True)
class RelayMetrics:
    """events_published_total{type}, outbox_pending, outbox_oldest_age_seconds, relay_confirm_latency_seconds."""

    published: Counter
    pending: Gauge
    oldest_age: Gauge
    confirm_latency: Histogram
    types: frozenset[str]

    def type_label(self, event_type: object) -> str:
        """Return event_type when the service publishes it, else "unknown" (bounded cardinality)."""
        return event_type if isinstance(event_type, str) and event_type in self.types else UNKNOWN


def relay_metrics(registry: CollectorRegistry, published_types: Iterable[str]) -> RelayMetrics:
    """Create the relay's metrics in registry (once per process)."""
    types = frozenset(published_types)
    published = Counter(
        "events_published", "Events confirmed by the broker and marked sent", ["type"], registry=registry
    )
    for event_type in sorted(types):
        published.labels(type=event_type)
    return RelayMetrics(
        published=published,
        pending=Gauge("outbox_pending", "Outbox rows not yet published", registry=registry),
        oldest_age=Gauge(
            "outbox_oldest_age_seconds", "Age of the oldest unpublished outbox row", registry=registry
        ),
        confirm_latency=Histogram(
            "relay_confirm_latency_seconds",
            "Time from publishing a batch to the broker's last confirm for it",
            buckets=CONFIRM_BUCKETS,
            registry=registry,
        ),
        types=types,
    )


@dataclass(frozen=True)
class ConsumerMetrics:
    """events_consumed_total, events_duplicates_total, events_dead_lettered_total, event_apply_age_seconds,
    consumer_up, dead_letters, dead_letter_oldest_age_seconds."""

    consumed: Counter
    duplicates: Counter
    dead_lettered: Counter
    apply_age: Histogram
    up: Gauge
    dead_letters: Gauge
    dead_letter_oldest_age: Gauge
    types: frozenset[str]

    def type_label(self, event_type: object) -> str:
        """Return event_type when the service consumes it, else "unknown" (bounded cardinality)."""
        return event_type if isinstance(event_type, str) and event_type in self.types else UNKNOWN


def consumer_metrics(
    registry: CollectorRegistry, consumed_types: Iterable[str], reasons: Iterable[str]
) -> ConsumerMetrics:
    """Create the consumer's metrics in registry (once per process)."""
    types = frozenset(consumed_types)
    metrics = ConsumerMetrics(
        consumed=Counter("events_consumed", "Events applied and acknowledged", ["type"], registry=registry),
        duplicates=Counter(
            "events_duplicates",
            "Deliveries dropped because the inbox already had them",
            ["type"],
            registry=registry,
        ),
        dead_lettered=Counter(
            "events_dead_lettered",
            "Deliveries rejected to the dead-letter queue",
            ["type", "reason"],
            registry=registry,
        ),
        apply_age=Histogram(
            "event_apply_age_seconds",
            "Time from occurred_at to the moment the consumer applied the event",
            ["type"],
            buckets=APPLY_AGE_BUCKETS,
            registry=registry,
        ),
        up=Gauge("consumer_up", "1 while the consumer is connected and consuming", registry=registry),
        dead_letters=Gauge(
            "dead_letters", "Messages in the service's dead-letter queue", ["queue"], registry=registry
        ),
        dead_letter_oldest_age=Gauge(
            "dead_letter_oldest_age_seconds",
            "Age of the oldest failure in the dead-letter queue (0 when empty)",
            ["queue"],
            registry=registry,
        ),
        types=types,
    )
    for event_type in sorted(types):
        metrics.consumed.labels(type=event_type)
        metrics.duplicates.labels(type=event_type)
        metrics.apply_age.labels(type=event_type)
    for event_type in (*sorted(types), UNKNOWN):
        for reason in reasons:
            metrics.dead_lettered.labels(type=event_type, reason=reason)
    return metrics
