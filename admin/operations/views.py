"""Dead-letter endpoints of admin's own queue, staff only: look, retry, discard, archive, audit."""

from __future__ import annotations

import logging

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from eventbus.connection import ConfigError
from eventbus.workbench import BrokerUnavailable, NotFound
from rest_framework import status
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import _first_message, error_response
from operations import serializers as s
from operations import services
from operations.models import DeadLetterAudit
from products.views import ErrorSerializer

logger = logging.getLogger(__name__)

TAG = ["dead letters"]
BROKER_DOWN = OpenApiResponse(
    ErrorSerializer,
    "The broker is down or refused (`broker_unavailable`): the dead letters stay where they are; "
    "try again when RabbitMQ is back (/api/ready shows the broker).",
)
COMMON = {
    400: OpenApiResponse(s.InvalidSerializer, "Bad input (`invalid`), with the fields at fault."),
    401: OpenApiResponse(ErrorSerializer, "No or bad credentials."),
    403: OpenApiResponse(ErrorSerializer, "Not staff, or the CSRF check failed."),
    503: BROKER_DOWN,
}
NOT_FOUND = OpenApiResponse(ErrorSerializer, "No dead letter matches (`not_found`).")
MESSAGE_ID = OpenApiParameter(
    "message_id", str, OpenApiParameter.PATH, description="The dead letter's AMQP message_id (the event id)."
)


def invalid(errors) -> Response:
    """Answer 400 in the dead-letter API's shape: {"error": "invalid", "detail", "fields"}."""
    fields = errors if isinstance(errors, dict) else {"non_field_errors": errors}
    return Response(
        {"error": "invalid", "detail": _first_message(fields), "fields": fields},
        status=status.HTTP_400_BAD_REQUEST,
    )


class DeadLetterView(APIView):
    """Staff only (session + CSRF or a token); every operation opens its own short broker connection."""

    permission_classes = (IsAdminUser,)

    def operate(self, operation) -> Response:
        """Run operation(letters) and map the workbench's exceptions to 503, 404 and 400."""
        try:
            letters = services.workbench()
        except ConfigError as exc:
            logger.error("RABBITMQ_URL is unusable: %s", exc)
            return error_response(
                "broker_unavailable", "RABBITMQ_URL is unusable: fix the service's configuration.", 503
            )
        try:
            return operation(letters)
        except BrokerUnavailable as exc:
            logger.warning("dead-letter workbench: broker unavailable: %s", exc)
            return error_response("broker_unavailable", str(exc), status.HTTP_503_SERVICE_UNAVAILABLE)
        except NotFound as exc:
            return error_response("not_found", str(exc), status.HTTP_404_NOT_FOUND)
        except ValueError as exc:  # a selector the workbench refuses (none or both)
            return invalid({"non_field_errors": [str(exc)]})

    @staticmethod
    def actor(request) -> str:
        """Return who is acting (the audit's actor)."""
        return request.user.get_username()


class DepthView(DeadLetterView):
    """GET /api/dead-letters/depth."""

    @extend_schema(
        tags=TAG,
        operation_id="dead_letters_depth",
        summary="Depth of admin's dead-letter queue",
        responses={200: s.DepthSerializer, **COMMON},
    )
    def get(self, request):
        return self.operate(lambda letters: Response(letters.depth()))


class OverviewView(DeadLetterView):
    """GET /api/dead-letters: groups by fingerprint, and a page of the messages."""

    @extend_schema(
        tags=TAG,
        operation_id="dead_letters_overview",
        summary="Dead letters grouped by failure, with one page of them",
        parameters=[s.OverviewQuery],
        responses={200: s.OverviewSerializer, **COMMON},
    )
    def get(self, request):
        query = s.OverviewQuery(data=request.query_params.dict())
        if not query.is_valid():
            return invalid(query.errors)
        params = query.validated_data
        return self.operate(
            lambda letters: Response(
                letters.overview(
                    fingerprint=params.get("fingerprint"), limit=params["limit"], offset=params["offset"]
                )
            )
        )


class DetailView(DeadLetterView):
    """GET /api/dead-letters/<message_id>."""

    @extend_schema(
        tags=TAG,
        operation_id="dead_letters_show",
        summary="One dead letter: payload, headers, x-death",
        parameters=[MESSAGE_ID],
        responses={200: s.DetailSerializer, 404: NOT_FOUND, **COMMON},
    )
    def get(self, request, message_id: str):
        if len(message_id) > s.MESSAGE_ID_MAX:
            return invalid(
                {"message_id": [f"Ensure this field has no more than {s.MESSAGE_ID_MAX} characters."]}
            )
        return self.operate(lambda letters: Response(letters.show(message_id)))


class RetryView(DeadLetterView):
    """POST /api/dead-letters/retry: republish one dead letter or a whole group to admin's queue."""

    @extend_schema(
        tags=TAG,
        operation_id="dead_letters_retry",
        summary="Retry one dead letter or a whole group",
        description=(
            "Bounded by the queue's depth when it starts; each dead letter is acked only after the broker "
            "confirmed its copy. One audit row (action retry) per message retried."
        ),
        request=s.RetrySerializer,
        responses={200: s.RetryResultSerializer, 404: NOT_FOUND, **COMMON},
    )
    def post(self, request):
        body = s.RetrySerializer(data=request.data)
        if not body.is_valid():
            return invalid(body.errors)
        selector = {k: v for k, v in body.validated_data.items() if k in ("message_id", "fingerprint")}

        return self.operate(
            lambda letters: Response(
                services.retry(letters, self.actor(request), body.validated_data["reason"], **selector)
            )
        )


class RemoveView(DeadLetterView):
    """Discard or archive: each message's audit row is committed before the broker drops it."""

    action: str = ""
    count_key: str = ""

    def post(self, request):
        body = s.RemoveSerializer(data=request.data)
        if not body.is_valid():
            return invalid(body.errors)
        data = body.validated_data
        selector = {k: v for k, v in data.items() if k in ("message_id", "fingerprint")}
        record = services.recorder(self.action, self.actor(request), data["reason"])

        def remove(letters):
            removed = letters.remove(**selector, record=record)
            return Response(
                {self.count_key: len(removed), "message_ids": [d.get("message_id") for d in removed]}
            )

        return self.operate(remove)


class DiscardView(RemoveView):
    """POST /api/dead-letters/discard."""

    action, count_key = DeadLetterAudit.Action.DISCARD, "discarded"

    @extend_schema(
        tags=TAG,
        operation_id="dead_letters_discard",
        summary="Discard one dead letter or a whole group (audited)",
        request=s.RemoveSerializer,
        responses={200: s.DiscardResultSerializer, 404: NOT_FOUND, **COMMON},
    )
    def post(self, request):
        return super().post(request)


class ArchiveView(RemoveView):
    """POST /api/dead-letters/archive."""

    action, count_key = DeadLetterAudit.Action.ARCHIVE, "archived"

    @extend_schema(
        tags=TAG,
        operation_id="dead_letters_archive",
        summary="Archive one dead letter or a whole group (audit row keeps body and headers)",
        request=s.RemoveSerializer,
        responses={200: s.ArchiveResultSerializer, 404: NOT_FOUND, **COMMON},
    )
    def post(self, request):
        return super().post(request)


class AuditView(APIView):
    """GET /api/dead-letters/audit: what staff did, newest first."""

    permission_classes = (IsAdminUser,)

    @extend_schema(
        tags=TAG,
        operation_id="dead_letters_audit",
        summary="The dead-letter audit trail, newest first",
        parameters=[s.AuditQuery],
        responses={
            200: s.AuditListSerializer,
            400: COMMON[400],
            401: COMMON[401],
            403: COMMON[403],
        },
    )
    def get(self, request):
        query = s.AuditQuery(data=request.query_params.dict())
        if not query.is_valid():
            return invalid(query.errors)
        rows = services.audit_trail(query.validated_data["limit"])
        return Response({"results": s.AuditSerializer(rows, many=True).data})
