"""Prometheus metrics at /metrics and OpenTelemetry tracing for the Flask app."""

import logging
import os

from eventbus import tracing
from opentelemetry import trace

logger = logging.getLogger(__name__)

# Liveness, readiness and scrapes are polled constantly; tracing them only adds noise.
UNTRACED_URLS = "metrics,flask/api/health,flask/api/ready,flask/api/docs"
_tracer_provider_set = False


def init_metrics(app):
    """Expose /metrics; multiprocess-aware when PROMETHEUS_MULTIPROC_DIR is set (gunicorn)."""
    options = {
        # url_rule, not path: one series per route, not per product id.
        "group_by": "url_rule",
        "excluded_paths": ["^/metrics$"],
        "defaults_prefix": "flask",
    }
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_flask_exporter.multiprocess import (
            GunicornInternalPrometheusMetrics,
        )

        metrics = GunicornInternalPrometheusMetrics(app, **options)
    else:
        from prometheus_client import REGISTRY, CollectorRegistry
        from prometheus_flask_exporter import PrometheusMetrics

        # Tests build many apps in one process; each needs its own registry.
        registry = CollectorRegistry(auto_describe=True) if app.testing else REGISTRY
        metrics = PrometheusMetrics(app, registry=registry, **options)
    app.extensions["prometheus_metrics"] = metrics
    return metrics


def init_tracing(app):
    """Trace requests with the OpenTelemetry SDK; export over OTLP/HTTP only when an endpoint is set."""
    global _tracer_provider_set
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        # The standard OpenTelemetry switch: no SDK, and no per-request instrumentation cost either.
        logger.info("tracing: disabled by OTEL_SDK_DISABLED")
        return
    from opentelemetry.instrumentation.flask import FlaskInstrumentor

    if not _tracer_provider_set:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider

        # OTEL_SERVICE_NAME (e.g. main-web, main-consumer) wins over the default name.
        attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": "main"}
        provider = TracerProvider(
            resource=Resource.create(attributes), sampler=tracing.sampler(app.config.get("APP_ENV", ""))
        )
        endpoint = app.config.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        if endpoint:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                OTLPSpanExporter,
            )
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
            logger.info("tracing: exporting spans over OTLP/HTTP to %s", endpoint)
        else:
            logger.info("tracing: no OTEL_EXPORTER_OTLP_ENDPOINT, spans are not exported")
        # The provider exists even without an exporter so trace ids reach logs and outbox headers.
        trace.set_tracer_provider(provider)
        _tracer_provider_set = True
    # enable_commenter feeds SQL comments to the SQLAlchemy instrumentation, which main does not use:
    # left on, it only attaches one more context per request.
    FlaskInstrumentor().instrument_app(app, excluded_urls=UNTRACED_URLS, enable_commenter=False)
    app.extensions["tracing"] = True
