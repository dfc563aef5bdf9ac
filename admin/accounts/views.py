"""Auth endpoints: CSRF cookie, session login/logout, who am I, API tokens, operator tokens and their keys."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth import authenticate, login, logout
from django.contrib.auth.signals import user_logged_in
from django.middleware.csrf import get_token
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_protect, ensure_csrf_cookie
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny, IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import operator_tokens
from accounts.security import (
    ExpiringTokenAuthentication,
    is_locked_out,
    lockout_response,
    token_expired,
    token_expires_at,
)
from config.api import error_response
from products.views import ErrorSerializer

logger = logging.getLogger(__name__)


class CredentialsSerializer(serializers.Serializer):
    """Username and password as strict strings."""

    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=128, trim_whitespace=False)

    def to_internal_value(self, data):
        if isinstance(data, dict):
            bad = {
                key: ["Must be a string."]
                for key in ("username", "password")
                if key in data and not isinstance(data[key], str)
            }
            if bad:
                raise serializers.ValidationError(bad)
        return super().to_internal_value(data)


MeSerializer = inline_serializer(
    name="Me",
    fields={
        "authenticated": serializers.BooleanField(),
        "username": serializers.CharField(required=False),
        "is_staff": serializers.BooleanField(required=False),
        "csrf_token": serializers.CharField(required=False),
    },
)
BAD_CREDENTIALS = "Invalid username or password, or the user is not staff."
LOCKED_OUT_RESPONSE = OpenApiResponse(
    ErrorSerializer, "Too many failed logins from this address (`too_many_login_failures`); see Retry-After."
)


class LockedOut(Exception):
    """authenticate() refused the credentials unchecked: the client's address is locked out."""


def _staff_user(request, data):
    """Return the active staff user for the credentials, or None."""
    credentials = CredentialsSerializer(data=data)
    credentials.is_valid(raise_exception=True)
    user = authenticate(request, **credentials.validated_data)
    if user is None and is_locked_out(request):
        raise LockedOut
    if user is None or not user.is_active or not user.is_staff:
        return None
    return user


def _me(user) -> dict:
    if not user.is_authenticated:
        return {"authenticated": False}
    return {
        "authenticated": True,
        "username": user.get_username(),
        "is_staff": user.is_staff,
    }


@method_decorator(ensure_csrf_cookie, name="dispatch")
class CsrfView(APIView):
    """GET /api/auth/csrf: set the csrftoken cookie (and return the token)."""

    permission_classes = (AllowAny,)
    authentication_classes = ()

    @extend_schema(
        summary="Set the CSRF cookie",
        responses={200: inline_serializer("Csrf", {"csrf_token": serializers.CharField()})},
    )
    def get(self, request):
        return Response({"csrf_token": get_token(request)})


# Login is CSRF-protected like Django's own login view (no login CSRF); fetch /api/auth/csrf first.
@method_decorator(csrf_protect, name="dispatch")
class LoginView(APIView):
    """POST /api/auth/login: start a session for a staff user."""

    permission_classes = (AllowAny,)
    authentication_classes = ()

    @extend_schema(
        summary="Log in (staff only)",
        request=CredentialsSerializer,
        responses={
            200: MeSerializer,
            400: OpenApiResponse(ErrorSerializer, "Bad credentials or not staff."),
            403: OpenApiResponse(ErrorSerializer, "CSRF check failed."),
            429: LOCKED_OUT_RESPONSE,
        },
    )
    def post(self, request):
        try:
            user = _staff_user(request, request.data)
        except LockedOut:
            return lockout_response(request)
        if user is None:
            logger.info("login refused")
            return error_response("invalid_credentials", BAD_CREDENTIALS, status.HTTP_400_BAD_REQUEST)
        login(request, user)
        # login() rotates the CSRF token; hand the new one to the SPA.
        return Response({**_me(user), "csrf_token": get_token(request)})


class LogoutView(APIView):
    """POST /api/auth/logout: end the session (CSRF enforced for session users)."""

    permission_classes = (AllowAny,)
    authentication_classes = (SessionAuthentication,)

    @extend_schema(
        summary="Log out",
        request=None,
        responses={
            200: MeSerializer,
            403: OpenApiResponse(ErrorSerializer, "CSRF check failed."),
        },
    )
    def post(self, request):
        logout(request)
        return Response({"authenticated": False})


class MeView(APIView):
    """GET /api/auth/me: 200 {"authenticated": false} for anonymous callers, else the user."""

    permission_classes = (AllowAny,)

    @extend_schema(summary="Who am I", responses={200: MeSerializer})
    def get(self, request):
        return Response(_me(request.user))


class TokenView(APIView):
    """POST /api/auth/token: the API token of a staff user (a new one once it expired); DELETE revokes it."""

    permission_classes = (AllowAny,)
    authentication_classes = ()

    def get_authenticators(self):
        # DELETE names the token to revoke with the token itself.
        if getattr(self.request, "method", None) == "DELETE":
            return [ExpiringTokenAuthentication()]
        return super().get_authenticators()

    @extend_schema(
        summary="Get an API token (staff only)",
        request=CredentialsSerializer,
        responses={
            200: inline_serializer(
                "TokenOut", {"token": serializers.CharField(), "expires_at": serializers.DateTimeField()}
            ),
            400: OpenApiResponse(ErrorSerializer, "Bad credentials or not staff."),
            429: LOCKED_OUT_RESPONSE,
        },
    )
    def post(self, request):
        try:
            user = _staff_user(request, request.data)
        except LockedOut:
            return lockout_response(request)
        if user is None:
            return error_response("invalid_credentials", BAD_CREDENTIALS, status.HTTP_400_BAD_REQUEST)
        # A token is a login: the signal resets the address's failure count (axes) and last_login.
        user_logged_in.send(sender=user.__class__, request=request, user=user)
        token, _ = Token.objects.get_or_create(user=user)
        if token_expired(token):
            token.delete()
            token = Token.objects.create(user=user)
        return Response({"token": token.key, "expires_at": token_expires_at(token)})

    @extend_schema(
        summary="Revoke the caller's API token",
        request=None,
        responses={
            204: OpenApiResponse(description="Revoked."),
            401: OpenApiResponse(ErrorSerializer, "No valid token."),
        },
    )
    def delete(self, request):
        if request.auth is None:
            return error_response(
                "not_authenticated", "Send the token to revoke: Authorization: Token <key>.", 401
            )
        request.auth.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


OperatorTokenSerializer = inline_serializer(
    "OperatorToken",
    {
        "token": serializers.CharField(
            help_text="A JWT (EdDSA) for the operations endpoints of other services."
        ),
        "token_type": serializers.ChoiceField(choices=["Bearer"]),
        "expires_in": serializers.IntegerField(
            help_text="Seconds until it expires (OPERATOR_TOKEN_TTL_SECONDS)."
        ),
    },
)
JWK_FIELDS = {
    "kty": serializers.ChoiceField(choices=["OKP"]),
    "crv": serializers.ChoiceField(choices=["Ed25519"]),
    "x": serializers.CharField(),
    "kid": serializers.CharField(help_text="RFC 7638 thumbprint"),
    "alg": serializers.ChoiceField(choices=["EdDSA"]),
    "use": serializers.ChoiceField(choices=["sig"]),
}
OPERATIONS_DISABLED = (
    "Operator tokens are off: this service has no signing key. Set OPERATOR_JWT_PRIVATE_KEY "
    "or OPERATOR_JWT_PRIVATE_KEY_FILE (README: Operator tokens)."
)


class OperatorTokenView(APIView):
    """POST /api/auth/operator-token: a short-lived signed token for a staff user (main's operations endpoints)."""

    permission_classes = (IsAdminUser,)

    @extend_schema(
        operation_id="auth_operator_token",
        summary="Get an operator token (staff only)",
        description=(
            "A JWT signed with admin's Ed25519 key (alg EdDSA, kid = RFC 7638 thumbprint), claims "
            "iss=admin, aud=operations, sub=username, staff=true, iat, exp, jti. Send it as "
            "`Authorization: Bearer <token>` to main's /flask/api/dead-letters; verify it with "
            "/api/auth/jwks.json."
        ),
        request=None,
        responses={
            200: OperatorTokenSerializer,
            401: OpenApiResponse(ErrorSerializer, "No or bad credentials."),
            403: OpenApiResponse(ErrorSerializer, "Not staff, or the CSRF check failed."),
            503: OpenApiResponse(ErrorSerializer, "No signing key configured (`operations_disabled`)."),
        },
    )
    def post(self, request):
        try:
            keys = operator_tokens.configured_keys()
        except operator_tokens.OperatorKeyError as exc:  # the key file was replaced by something unusable
            logger.error("operator keys unusable: %s", exc)
            return error_response("operations_disabled", str(exc), status.HTTP_503_SERVICE_UNAVAILABLE)
        if keys.signing_key is None:
            return error_response(
                "operations_disabled", OPERATIONS_DISABLED, status.HTTP_503_SERVICE_UNAVAILABLE
            )
        ttl = settings.OPERATOR_TOKEN_TTL_SECONDS
        token = keys.issue(request.user.get_username(), ttl)
        logger.info("operator token issued to %s (kid %s)", request.user.get_username(), keys.kid)
        response = Response({"token": token, "token_type": "Bearer", "expires_in": ttl})
        response["Cache-Control"] = "no-store"
        return response


class JwksView(APIView):
    """GET /api/auth/jwks.json: the public keys that verify operator tokens (current and retiring)."""

    permission_classes = (AllowAny,)
    authentication_classes = ()

    @extend_schema(
        operation_id="auth_jwks",
        summary="Public keys of the operator tokens (JWKS)",
        responses={
            200: inline_serializer("Jwks", {"keys": inline_serializer("Jwk", JWK_FIELDS, many=True)}),
            503: OpenApiResponse(
                ErrorSerializer, "The configured keys became unusable (`operations_disabled`)."
            ),
        },
    )
    def get(self, request):
        try:
            jwks = operator_tokens.configured_keys().jwks()
        except operator_tokens.OperatorKeyError as exc:
            logger.error("operator keys unusable: %s", exc)
            return error_response("operations_disabled", str(exc), status.HTTP_503_SERVICE_UNAVAILABLE)
        response = Response(jwks)
        # Verifiers may cache it: a new key is published one token lifetime before it signs (README).
        response["Cache-Control"] = "public, max-age=300"
        return response
