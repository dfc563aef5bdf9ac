"""JSON error responses for every HTTP error, and a last-resort 500 that logs."""

import logging
import re

from flask import jsonify
from werkzeug.exceptions import HTTPException, InternalServerError

logger = logging.getLogger(__name__)


def error_code(exc):
    """Return the snake_case code of an HTTP exception, e.g. 'method_not_allowed'."""
    return re.sub(r"[^a-z0-9]+", "_", (exc.name or "error").lower()).strip("_")


def error_response(status, code, detail, fields=None):
    """Return a JSON error response in the team's shape."""
    body = {"error": code, "detail": detail}
    if fields:
        body["fields"] = fields
    response = jsonify(body)
    response.status_code = status
    return response


def handle_http_exception(exc):
    """Render any werkzeug HTTPException as JSON, keeping its headers (e.g. Allow on 405)."""
    if exc.code is None or exc.code >= 500:
        logger.error("server error %s: %s", exc.code, exc.description)
    response = error_response(exc.code or 500, error_code(exc), exc.description)
    if exc.code == 405 and hasattr(exc, "valid_methods") and exc.valid_methods:
        response.headers["Allow"] = ", ".join(sorted(exc.valid_methods))
    for name, value in exc.get_headers():
        if name == "Retry-After":
            response.headers[name] = value
    return response


def handle_unexpected(exc):
    """Log an unhandled exception with its traceback and answer a JSON 500."""
    original = getattr(exc, "original_exception", None) or exc
    logger.error("unhandled exception: %s", type(original).__name__, exc_info=original)
    return error_response(500, "internal_error", InternalServerError.description)


def register_error_handlers(app):
    """Install the JSON error handlers on app."""
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(InternalServerError, handle_unexpected)
    app.register_error_handler(Exception, handle_unexpected)
