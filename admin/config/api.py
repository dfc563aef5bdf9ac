"""API plumbing shared by every app: JSON errors, JSON 404/500, CSRF failures as JSON."""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, JsonResponse
from django.views import defaults
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from config.parsers import PayloadTooLarge

logger = logging.getLogger(__name__)


def _first_message(errors) -> str:
    """Return the first human-readable message of a DRF error structure."""
    if isinstance(errors, dict):
        for key, value in errors.items():
            message = _first_message(value)
            return message if key == "non_field_errors" else f"{key}: {message}"
        return "Invalid input."
    if isinstance(errors, list):
        return _first_message(errors[0]) if errors else "Invalid input."
    return str(errors)


def exception_handler(exc, context):
    """Render every API error as {"error": code, "detail": text, "fields"?: {...}}."""
    if isinstance(exc, RequestDataTooBig):
        # Django refuses to buffer the body before any parser runs: same answer as the parser's.
        exc = PayloadTooLarge()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # unexpected: Django's 500 handling (logged) takes over
    data = response.data
    if isinstance(exc, exceptions.ValidationError):
        fields = data if isinstance(data, dict) else {"non_field_errors": data}
        body = {
            "error": "validation_error",
            "detail": _first_message(fields),
            "fields": fields,
        }
    else:
        code = getattr(exc, "default_code", "error")
        if isinstance(exc, Http404):
            code = "not_found"
        elif isinstance(exc, DjangoPermissionDenied):
            code = "permission_denied"
        detail = data.get("detail", "") if isinstance(data, dict) else str(data)
        body = {"error": str(code), "detail": str(detail)}
    response.data = body
    return response


def _wants_json(request) -> bool:
    return request.path.startswith("/api/") or request.path in ("/api", "/metrics")


def not_found_json(request, exception=None):
    """Return the JSON 404 for unknown API routes."""
    return JsonResponse(
        {
            "error": "not_found",
            "detail": f"No route for {request.method} {request.path}.",
        },
        status=404,
    )


def handler404(request, exception=None):
    """Answer JSON for API paths and Django's page elsewhere."""
    if _wants_json(request):
        return not_found_json(request, exception)
    return defaults.page_not_found(request, exception)


def handler500(request):
    """Answer JSON for API paths and Django's page elsewhere."""
    if _wants_json(request):
        return JsonResponse({"error": "server_error", "detail": "Internal server error."}, status=500)
    return defaults.server_error(request)


def error_response(code: str, detail: str, http_status: int) -> Response:
    """Build a DRF response in the shared error shape."""
    return Response({"error": code, "detail": detail}, status=http_status)


def csrf_failure(request, reason=""):
    """Answer a failed CSRF check as JSON for API paths and Django's page elsewhere."""
    if _wants_json(request):
        return JsonResponse(
            {"error": "csrf_failed", "detail": f"CSRF check failed: {reason}"},
            status=403,
        )
    from django.views.csrf import csrf_failure as django_csrf_failure

    return django_csrf_failure(request, reason=reason)


def schema_without_trailing_slashes(result, generator, request, public):
    """Document the canonical paths (/api/products) rather than the optional-slash form."""
    result["paths"] = {(path.rstrip("/") or "/"): item for path, item in result.get("paths", {}).items()}
    return result
