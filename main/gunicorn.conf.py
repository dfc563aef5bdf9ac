"""Gunicorn settings for the main web process (README: Configuration, PORT and WEB_CONCURRENCY)."""

import logging
import os
import shutil
import tempfile

from gunicorn import glogging

bind = f"0.0.0.0:{os.environ.get('PORT', '5000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "sync"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 5
# Oversized request lines / headers / cookies get gunicorn's 400 before reaching Flask.
limit_request_line = 4094
limit_request_fields = 50
limit_request_field_size = 8190
# Behind the SPA's proxy: trust X-Forwarded-* only from the local proxy.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# The control socket defaults to one fixed path per user; several gunicorns (admin, main, tests)
# on one machine would fight over it, and nothing here uses it.
control_socket_disable = True
accesslog = "-"
errorlog = "-"

# prometheus_client picks its multiprocess value class when first imported, so the directory
# must be in the environment before the app (and prometheus_client) is loaded by a worker.
_own_multiproc_dir = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _own_multiproc_dir:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="main-prometheus-")
_MULTIPROC_DIR = os.environ["PROMETHEUS_MULTIPROC_DIR"]

logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(levelname)s %(name)s %(message)s",
            "rename_fields": {"levelname": "level", "name": "logger"},
            "static_fields": {"service": "main"},
            "timestamp": True,
        }
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stdout",
        },
    },
    # The app adds its own JSON handler to the root logger (app.logging_config).
    "root": {"level": "INFO", "handlers": []},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["stdout"], "propagate": False},
        "gunicorn.access": {
            "level": "INFO",
            "handlers": ["stdout"],
            "propagate": False,
        },
    },
}


class JsonAccessLogger(glogging.Logger):
    """Write one JSON access line per request with the fields as separate keys."""

    def access(self, resp, req, environ, request_time):
        """Log method, path, status and duration of a finished request."""
        if not self.access_log.isEnabledFor(logging.INFO):
            return
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        self.access_log.info(
            "%s %s %s",
            req.method,
            req.path,
            status,
            extra={
                "method": req.method,
                "path": req.path,
                "status": int(status),
                "duration_ms": round(request_time.total_seconds() * 1000, 3),
                "remote_addr": environ.get("REMOTE_ADDR"),
                "user_agent": environ.get("HTTP_USER_AGENT"),
            },
        )


logger_class = JsonAccessLogger


def on_starting(server):
    """Start with an empty metrics directory: files of dead earlier runs would be summed in."""
    for name in os.listdir(_MULTIPROC_DIR):
        path = os.path.join(_MULTIPROC_DIR, name)
        if name.endswith(".db") and os.path.isfile(path):
            os.unlink(path)
    server.log.info("prometheus multiprocess dir: %s", _MULTIPROC_DIR)


def child_exit(server, worker):
    """Mark a dead worker's live gauges as gone."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    """Remove the metrics directory gunicorn created for itself."""
    if _own_multiproc_dir:
        shutil.rmtree(_MULTIPROC_DIR, ignore_errors=True)
