"""Auth endpoints: CSRF cookie, session login/logout, who am I, API tokens."""

from __future__ import annotations

import logging

from django.contrib.auth import authenticate, login, logout
from django.contrib.auth.signals import user_logged_in
from django.middleware.csrf import get_token
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_protect, ensure_csrf_cookie
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

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
