"""Login throttling (django-axes) and expiring API tokens, for every way a password or token arrives.

Failed logins are counted per client address by django-axes in the database, so every worker and
replica shares the count: after LOGIN_FAILURE_LIMIT failures the address is locked out for
LOGIN_COOLOFF_SECONDS, and every login path answers 429 with Retry-After, before hashing the
password again:
- the Django admin's login form (axes' middleware calls lockout_response);
- POST /api/auth/login and /api/auth/token (the views check the DRF request's lockout flag);
- HTTP Basic auth (LockoutAwareBasicAuthentication).
A successful login resets the address's count. nginx limits the login paths per address as well.

API tokens expire API_TOKEN_TTL_HOURS after they were issued: POST /api/auth/token then issues a
new one, and DELETE /api/auth/token revokes the caller's token at once.
"""

from __future__ import annotations

import datetime
import math

from axes.helpers import get_cool_off
from django.conf import settings
from django.http import JsonResponse
from django.utils import timezone
from rest_framework.authentication import BasicAuthentication, TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed, Throttled

LOCKED_OUT = "Too many failed logins from your address: wait {seconds} s and try again."


def client_ip(request) -> str | None:
    """Return the client address: X-Forwarded-For's entry added by our own proxies, else REMOTE_ADDR."""
    meta = getattr(request, "META", {})
    hops = settings.TRUSTED_PROXY_HOPS
    if hops:
        forwarded = [part.strip() for part in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(forwarded) >= hops:
            return forwarded[-hops]
    return meta.get("REMOTE_ADDR")


def cool_off_seconds(request=None) -> int:
    """Return the lockout's length in whole seconds (at least 1)."""
    cool_off = get_cool_off(request) or datetime.timedelta(seconds=1)
    return max(1, math.ceil(cool_off.total_seconds()))


def lockout_response(request, original_response=None, credentials=None) -> JsonResponse:
    """axes' AXES_LOCKOUT_CALLABLE: a 429 in the API's error shape, with Retry-After."""
    seconds = cool_off_seconds(request)
    response = JsonResponse(
        {"error": "too_many_login_failures", "detail": LOCKED_OUT.format(seconds=seconds)}, status=429
    )
    response["Retry-After"] = str(seconds)
    return response


def is_locked_out(request) -> bool:
    """Return True when authenticate() just refused this request because its address is locked out."""
    return bool(getattr(request, "axes_locked_out", False))


class LockoutAwareBasicAuthentication(BasicAuthentication):
    """HTTP Basic auth that answers 429 (not 401) while the address is locked out."""

    def authenticate_credentials(self, userid, password, request=None):
        try:
            return super().authenticate_credentials(userid, password, request)
        except AuthenticationFailed:
            if request is not None and is_locked_out(request):
                seconds = cool_off_seconds(request)
                raise Throttled(wait=seconds, detail=LOCKED_OUT.format(seconds=seconds)) from None
            raise


def token_expired(token) -> bool:
    """Return True when the token is older than API_TOKEN_TTL_HOURS."""
    return timezone.now() - token.created > datetime.timedelta(hours=settings.API_TOKEN_TTL_HOURS)


def token_expires_at(token) -> datetime.datetime:
    """Return when the token stops being accepted."""
    return token.created + datetime.timedelta(hours=settings.API_TOKEN_TTL_HOURS)


class ExpiringTokenAuthentication(TokenAuthentication):
    """DRF's token auth, refusing tokens older than API_TOKEN_TTL_HOURS."""

    def authenticate_credentials(self, key):
        user, token = super().authenticate_credentials(key)
        if token_expired(token):
            raise AuthenticationFailed("Token expired: get a new one with POST /api/auth/token.")
        return user, token
