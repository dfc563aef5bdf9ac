"""Gunicorn logger that writes JSON lines (error log and one structured line per request)."""

from __future__ import annotations

import logging
import sys

from gunicorn.glogging import Logger

from config.log import TraceContextFilter, json_formatter


class JsonLogger(Logger):
    """Send gunicorn's error and access logs to stdout as JSON."""

    def setup(self, cfg):
        super().setup(cfg)
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(json_formatter())
        handler.addFilter(TraceContextFilter())
        for log in (self.error_log, self.access_log):
            log.handlers = [handler]
            log.propagate = False
        self.access_log.setLevel(logging.INFO)

    def access(self, resp, req, environ, request_time):
        """Log one request with its method, path, status and duration."""
        if not (self.cfg.accesslog or self.cfg.logconfig or self.cfg.logconfig_dict):
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
                "query": req.query,
                "status": int(status),
                "duration_ms": round(request_time.total_seconds() * 1000, 3),
                "bytes": getattr(resp, "sent", None),
                "remote_addr": environ.get("REMOTE_ADDR"),
                "user_agent": environ.get("HTTP_USER_AGENT"),
            },
        )
