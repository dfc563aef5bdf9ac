"""JSON log lines on stdout: timestamp, level, service, logger, message, and the trace id in a span."""

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

from app.config import SERVICE_NAME

LOG_FORMAT = "%(levelname)s %(name)s %(message)s"


class ContextFilter(logging.Filter):
    """Add the service name and, inside a recording span, the trace id to every record."""

    def __init__(self, service):
        super().__init__()
        self.service = service

    def filter(self, record):
        record.service = self.service
        if not hasattr(record, "trace_id"):
            trace_id = _current_trace_id()
            if trace_id:
                record.trace_id = trace_id
        return True


def _current_trace_id():
    try:
        from opentelemetry import trace
    except ImportError:  # pragma: no cover - opentelemetry is a pinned dependency
        return None
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


def json_formatter():
    """Return the formatter that renders timestamp, level, service, message (+ extras)."""
    return JsonFormatter(
        LOG_FORMAT,
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp=True,  # ISO 8601 UTC with milliseconds, under the key "timestamp"
    )


def configure_logging(level="INFO", service=SERVICE_NAME, stream=None):
    """Send all logging as JSON lines to stdout, once per process."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, "_main_json", False)), None)
    if handler is None:
        handler = logging.StreamHandler(stream or sys.stdout)
        handler._main_json = True
        handler.setFormatter(json_formatter())
        handler.addFilter(ContextFilter(service))
        root.addHandler(handler)
    root.setLevel(level)
    return handler
