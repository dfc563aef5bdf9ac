"""JSON log lines with timestamp, level, service, message (and trace_id inside a span)."""

import io
import json
import logging

from opentelemetry import trace

from app.logging_config import ContextFilter, json_formatter


def capture():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(json_formatter())
    handler.addFilter(ContextFilter("main"))
    logger = logging.getLogger("tests.logging_probe")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, stream


def test_lines_are_json_with_the_agreed_fields():
    logger, stream = capture()

    logger.info("liked %s", 42, extra={"event_id": "e-1", "event_type": "product.liked"})

    line = json.loads(stream.getvalue())
    assert line["message"] == "liked 42"
    assert line["level"] == "INFO"
    assert line["service"] == "main"
    assert line["timestamp"].startswith("20")
    assert (line["event_id"], line["event_type"]) == ("e-1", "product.liked")


def test_trace_id_is_added_inside_a_span(app):
    logger, stream = capture()
    tracer = trace.get_tracer("tests")

    with tracer.start_as_current_span("probe") as span:
        logger.info("inside")
    expected = format(span.get_span_context().trace_id, "032x")

    assert json.loads(stream.getvalue())["trace_id"] == expected
