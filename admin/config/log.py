"""JSON log lines for every process of the admin service."""

from __future__ import annotations

import logging

from pythonjsonlogger.json import JsonFormatter

SERVICE = "admin"


class TraceContextFilter(logging.Filter):
    """Add the current OpenTelemetry trace id to each record (when a span is active)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "trace_id"):
            from opentelemetry import trace

            ctx = trace.get_current_span().get_span_context()
            if ctx.is_valid:
                record.trace_id = format(ctx.trace_id, "032x")
        return True


def json_formatter() -> JsonFormatter:
    """Return the formatter: timestamp, level, service, logger, message (+ extra fields)."""
    return JsonFormatter(
        "%(levelname)s %(name)s %(message)s",
        rename_fields={"levelname": "level", "name": "logger"},
        static_fields={"service": SERVICE},
        timestamp="timestamp",
    )


def not_a_readiness_answer(record: logging.LogRecord) -> bool:
    """Keep django.request's records, except the 503 of /api/ready: a "not ready" answer is not an error."""
    request = getattr(record, "request", None)
    path = getattr(request, "path", "")
    return not (getattr(record, "status_code", None) == 503 and path.rstrip("/") == "/api/ready")


def logging_config(level: str = "INFO") -> dict:
    """Return a dictConfig that writes JSON lines to stdout."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "trace": {"()": "config.log.TraceContextFilter"},
            "readiness": {"()": "django.utils.log.CallbackFilter", "callback": not_a_readiness_answer},
        },
        "formatters": {"json": {"()": "config.log.json_formatter"}},
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
                "formatter": "json",
                "filters": ["trace"],
            }
        },
        "root": {"handlers": ["stdout"], "level": level},
        "loggers": {
            # Request noise is in the access log already; keep warnings and errors.
            "django.server": {"level": "WARNING"},
            # A readiness probe polled while the stack starts would log every 503 at ERROR.
            "django.request": {"filters": ["readiness"]},
            "pika": {"level": "WARNING"},
            "botocore": {"level": "WARNING"},
            "urllib3": {"level": "WARNING"},
        },
    }
