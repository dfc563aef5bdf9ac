"""Serving Prometheus metrics from admin's relay and consumer processes.

The metric objects live in relay.py and consumer.py, so each process exposes only its own
(a relay must not report consumer_up 0).
"""

from __future__ import annotations

import logging

from prometheus_client import start_http_server

logger = logging.getLogger(__name__)


def serve(port: int | None) -> None:
    """Serve /metrics on port (all interfaces so Prometheus can scrape it); 0 or None = off."""
    if not port:
        return
    start_http_server(int(port))
    logger.info("serving metrics on port %s", port)
