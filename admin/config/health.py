"""Liveness and readiness endpoints."""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.db import connection
from django.db.models import Min
from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from eventbus import connection as broker
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from messaging.models import OutboxEvent, WorkerHeartbeat

logger = logging.getLogger(__name__)

_broker_lock = threading.Lock()
_broker_cache: dict = {"at": None, "result": None}


def check_database() -> dict:
    """Run SELECT 1."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return {"ok": True}
    except Exception as exc:  # noqa: BLE001 -- any failure means not ready
        return {"ok": False, "error": type(exc).__name__}


def _probe_broker() -> dict:
    # Ready when any of RABBITMQ_URL's addresses answers (each gets its own 2 s).
    try:
        params = broker.parameters(
            settings.RABBITMQ_URL,
            settings.RABBITMQ_CA_FILE,
            socket_timeout=1.0,
            blocked_connection_timeout=2.0,
            stack_timeout=2.0,
        )
    except broker.ConfigError:  # named by its class only: the URL holds credentials
        return {"ok": False, "error": "ConfigError"}
    return broker.probe(params)


def check_broker() -> dict:
    """Open and close a broker connection, reusing the answer for a couple of seconds."""
    with _broker_lock:
        now = time.monotonic()
        at = _broker_cache["at"]
        if at is not None and now - at < settings.READY_BROKER_CACHE_SECONDS:
            return dict(_broker_cache["result"])
        result = _probe_broker()
        _broker_cache.update(at=time.monotonic(), result=result)
        return dict(result)


def reset_broker_cache() -> None:
    """Forget the cached broker answer (tests, config changes)."""
    with _broker_lock:
        _broker_cache.update(at=None, result=None)


def check_outbox() -> dict:
    """Count pending outbox rows and the age of the oldest."""
    try:
        pending = OutboxEvent.objects.filter(published_at__isnull=True)
        stats = pending.aggregate(oldest=Min("created_at"))
        count = pending.count()
    except Exception as exc:  # noqa: BLE001
        return {
            "ok": False,
            "pending": None,
            "oldest_age_seconds": None,
            "error": type(exc).__name__,
        }
    age = None
    if stats["oldest"] is not None:
        age = max(0.0, round((timezone.now() - stats["oldest"]).total_seconds(), 3))
    ok = age is None or age <= settings.READY_OUTBOX_MAX_AGE_SECONDS
    return {"ok": ok, "pending": count, "oldest_age_seconds": age}


def check_consumer() -> dict:
    """Check that the consumer's heartbeat is recent."""
    try:
        beat = WorkerHeartbeat.objects.filter(name=settings.CONSUMER_HEARTBEAT_NAME).first()
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "last_seen_age_seconds": None, "error": type(exc).__name__}
    if beat is None:
        return {"ok": False, "last_seen_age_seconds": None}
    age = max(0.0, round((timezone.now() - beat.last_seen).total_seconds(), 3))
    return {
        "ok": age <= settings.READY_CONSUMER_MAX_AGE_SECONDS,
        "last_seen_age_seconds": age,
    }


Check = inline_serializer(
    name="ReadyCheck",
    fields={
        "ok": serializers.BooleanField(),
        "error": serializers.CharField(required=False),
        "pending": serializers.IntegerField(required=False, allow_null=True),
        "oldest_age_seconds": serializers.FloatField(required=False, allow_null=True),
        "last_seen_age_seconds": serializers.FloatField(required=False, allow_null=True),
    },
)
ReadySerializer = inline_serializer(
    name="Ready",
    fields={
        "status": serializers.ChoiceField(choices=["ready", "not_ready"]),
        "checks": inline_serializer(
            name="ReadyChecks",
            fields={
                "database": Check,
                "broker": Check,
                "outbox": Check,
                "consumer": Check,
            },
        ),
    },
)


class HealthView(APIView):
    """GET /api/health: the process answers."""

    permission_classes = (AllowAny,)
    authentication_classes = ()

    @extend_schema(
        summary="Liveness",
        responses={200: inline_serializer("Health", {"status": serializers.CharField()})},
    )
    def get(self, request):
        return Response({"status": "ok"})


class ReadyView(APIView):
    """GET /api/ready: database, broker, outbox and consumer are all fine."""

    permission_classes = (AllowAny,)
    authentication_classes = ()

    @extend_schema(summary="Readiness", responses={200: ReadySerializer, 503: ReadySerializer})
    def get(self, request):
        checks = {
            "database": check_database(),
            "broker": check_broker(),
            "outbox": check_outbox(),
            "consumer": check_consumer(),
        }
        ready = all(check["ok"] for check in checks.values())
        if not ready:
            failing = [name for name, check in checks.items() if not check["ok"]]
            logger.info("not ready: %s", ", ".join(failing))
        return Response(
            {"status": "ready" if ready else "not_ready", "checks": checks},
            status=200 if ready else 503,
        )
