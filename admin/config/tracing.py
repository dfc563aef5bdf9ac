"""Set up OpenTelemetry tracing (exporting only when OTEL_EXPORTER_OTLP_ENDPOINT is set)."""

from __future__ import annotations

import logging
import os
import threading

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_configured = False


def configure_tracing(service_name: str = "admin") -> None:
    """Install the tracer provider and Django instrumentation once per process."""
    global _configured
    with _lock:
        if _configured:
            return
        _configured = True
    from django.conf import settings
    from eventbus import tracing
    from opentelemetry import trace
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    # OTEL_SERVICE_NAME (e.g. admin-web, admin-consumer) wins over the default name.
    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": service_name}
    # Production records a tenth of new traces, parent-based; development every one (README: Monitoring).
    provider = TracerProvider(
        resource=Resource.create(attributes), sampler=tracing.sampler(getattr(settings, "APP_ENV", ""))
    )
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    if endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter,
        )
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        # The exporter reads OTEL_EXPORTER_OTLP_ENDPOINT itself and appends /v1/traces.
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        logger.info("exporting traces via OTLP/HTTP to %s", endpoint)
    trace.set_tracer_provider(provider)
    # Spans without an exporter still give each request a trace id for the outbox headers.
    DjangoInstrumentor().instrument(is_sql_commentor_enabled=False)
    # The instrumentor puts its middleware first, and it reads the Host (build_absolute_uri):
    # the middleware that lets scrapes and probes come by IP must run before it (config/hosts.py).
    hosts = "config.hosts.OperationsHostMiddleware"
    middleware = list(settings.MIDDLEWARE)
    if hosts in middleware:
        middleware.remove(hosts)
        settings.MIDDLEWARE = [hosts, *middleware]
