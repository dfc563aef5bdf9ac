"""Prometheus metrics of the consumer and relay processes (the same names as admin's: dashboards query them).

They live in their own registry: the web process's default registry never sees them, so the
names cannot clash with anything the web side defines, and each worker serves only its own.
"""

from __future__ import annotations

import logging

from eventbus.metrics import consumer_metrics, relay_metrics
from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector, start_http_server

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

DEAD_LETTER_REASONS = (*contract.REJECT_CODES, "handler_error")
RELAY = relay_metrics(REGISTRY, contract.PUBLISHED)
CONSUMER = consumer_metrics(REGISTRY, contract.CONSUMED, DEAD_LETTER_REASONS)


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
