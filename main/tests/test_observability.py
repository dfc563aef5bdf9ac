"""Metrics (single- and multi-process) and tracing set-up."""

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from app import observability
from tests.conftest import make_app


def test_multiprocess_metrics_under_gunicorn(database_url, tmp_path, monkeypatch):
    from prometheus_flask_exporter.multiprocess import GunicornInternalPrometheusMetrics

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))

    app = make_app(database_url)

    assert isinstance(app.extensions["prometheus_metrics"], GunicornInternalPrometheusMetrics)
    assert app.test_client().get("/metrics").status_code == 200


def test_otlp_exporter_only_when_an_endpoint_is_set(app, monkeypatch):
    providers = []
    monkeypatch.setattr(trace, "set_tracer_provider", providers.append)
    monkeypatch.setattr(observability, "_tracer_provider_set", False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")

    app.config["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:1"
    observability.init_tracing(app)
    monkeypatch.setattr(observability, "_tracer_provider_set", False)
    app.config["OTEL_EXPORTER_OTLP_ENDPOINT"] = None
    observability.init_tracing(app)

    with_endpoint, without = providers
    processors = lambda p: p._active_span_processor._span_processors  # noqa: E731
    assert [type(s).__name__ for s in processors(with_endpoint)] == ["BatchSpanProcessor"]
    assert processors(without) == ()
    with_endpoint.shutdown()


def test_the_standard_sampler_variables_choose_the_sampler(app, monkeypatch):
    """README: production records a tenth of new traces, development all; OTEL_TRACES_SAMPLER(_ARG) choose instead."""
    providers = []
    monkeypatch.setattr(trace, "set_tracer_provider", providers.append)
    monkeypatch.setattr(observability, "_tracer_provider_set", False)
    monkeypatch.delenv("OTEL_TRACES_SAMPLER", raising=False)
    observability.init_tracing(app)
    monkeypatch.setattr(observability, "_tracer_provider_set", False)
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.25")
    observability.init_tracing(app)

    monkeypatch.setattr(observability, "_tracer_provider_set", False)
    monkeypatch.delenv("OTEL_TRACES_SAMPLER")
    app.config["APP_ENV"] = "production"
    observability.init_tracing(app)

    default, sampled, production = (p.sampler.get_description() for p in providers)
    assert default.startswith("ParentBased{root:AlwaysOnSampler,")  # development: every trace
    assert sampled.startswith("ParentBased{root:TraceIdRatioBased{0.25}")
    assert production.startswith("ParentBased{root:TraceIdRatioBased{0.1}")  # README: Monitoring


def test_requests_are_traced_without_an_exporter(client, add_product):
    add_product(1)
    response = client.post("/flask/api/products/1/like")
    assert response.status_code == 200
    assert trace.get_tracer_provider().__class__.__name__ == "TracerProvider"


def test_otel_sdk_disabled_skips_tracing(database_url, monkeypatch):
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    app = make_app(database_url)
    assert "tracing" not in app.extensions
    assert not getattr(app, "_is_instrumented_by_opentelemetry", False)


def test_tracing_instruments_the_app_by_default(app):
    assert app.extensions["tracing"] is True
    assert app._is_instrumented_by_opentelemetry  # opentelemetry-instrumentation-flask


@pytest.fixture
def spans():
    """Collect the spans finished during the test."""
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    processor = SimpleSpanProcessor(exporter)
    trace.get_tracer_provider().add_span_processor(processor)
    yield exporter
    # The provider is process-wide: stop collecting for later tests.
    processor.shutdown()


INCOMING = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_like_runs_in_a_server_span_that_continues_the_caller_trace_and_reaches_the_outbox(
    app, client, add_product, spans
):
    import json

    from app.extensions import db
    from app.models import OutboxEvent

    add_product(1)
    response = client.post("/flask/api/products/1/like", headers={"traceparent": INCOMING})

    assert response.status_code == 200
    [span] = spans.get_finished_spans()
    assert span.kind is SpanKind.SERVER
    assert span.name == "POST /flask/api/products/<product_id:product_id>/like"
    assert span.attributes["http.route"] == "/flask/api/products/<product_id:product_id>/like"
    assert _attr(span, "http.request.method", "http.method") == "POST"
    assert _attr(span, "http.response.status_code", "http.status_code") == 200
    assert format(span.context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
    assert format(span.parent.span_id, "016x") == "b7ad6b7169203331"
    with app.app_context():
        headers = json.loads(db.session.query(OutboxEvent).one().headers)
    # The relay sends this on; admin's consumer span becomes a child of the like's span.
    assert headers["traceparent"] == (
        f"00-0af7651916cd43dd8448eb211c80319c-{format(span.context.span_id, '016x')}-01"
    )


def test_a_request_without_traceparent_starts_a_new_trace(client, add_product, spans):
    add_product(1)
    client.post("/flask/api/products/1/like")
    [span] = spans.get_finished_spans()
    assert span.parent is None
    assert span.context.trace_id != 0


def _attr(span, name, old_name):
    """Return a span attribute under its current or its older semantic-convention name."""
    return span.attributes.get(name, span.attributes.get(old_name))


def test_polled_endpoints_are_not_traced(client, spans):
    for path in ("/flask/api/health", "/flask/api/ready", "/metrics", "/flask/api/docs"):
        client.get(path)
    assert spans.get_finished_spans() == ()

    assert client.get("/flask/api/nope/123").status_code == 404
    [span] = spans.get_finished_spans()
    assert _attr(span, "http.response.status_code", "http.status_code") == 404
    assert span.status.status_code is StatusCode.UNSET


def test_server_errors_mark_the_span_as_error(app, client, spans, monkeypatch):
    from app import services

    def boom(shopper_id):
        raise RuntimeError("database on fire")

    monkeypatch.setattr(services, "list_products", boom)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    assert client.get("/flask/api/products").status_code == 500
    [span] = spans.get_finished_spans()
    assert _attr(span, "http.response.status_code", "http.status_code") == 500
    assert span.status.status_code is StatusCode.ERROR
