"""Routes of /flask/api/dead-letters: the dead-letter workbench of main.dlq, for operators. No SQL here.

Every route needs an operator token (app.operator_tokens) in `Authorization: Bearer`; the
operations themselves are app.dead_letters. These routes take no shopper cookie and no like
budget (app.api.guard): an operator's clicks count against no shopper, and the limiter leaves them
alone (they are exempt, so a default limit added later would not throttle an incident's clean-up).
"""

import json
import logging

from flask import Blueprint, current_app, g, jsonify, request
from marshmallow import ValidationError
from werkzeug.routing import BaseConverter

from app import dead_letters
from app.api.errors import error_response
from app.api.guard import limiter
from app.api.schemas import (
    MAX_MESSAGE_ID_LENGTH,
    DeadLetterAuditQuerySchema,
    DeadLetterListQuerySchema,
    DeadLetterRemoveSchema,
    DeadLetterRetrySchema,
)
from app.operator_tokens import NotStaff, OperatorKeys, TokenRejected, verify

logger = logging.getLogger(__name__)

bp = Blueprint("dead_letters", __name__, url_prefix="/flask/api/dead-letters")
limiter.exempt(bp)


class MessageIdConverter(BaseConverter):
    """A message id in the path: up to 255 characters (AMQP's limit), never the name of an action.

    Without the exclusion, /retry would also match the GET of a message called "retry", and the
    answer to OPTIONS /retry would offer GET.
    """

    regex = rf"(?!(?:retry|discard|archive)$)[^/]{{1,{MAX_MESSAGE_ID_LENGTH}}}"


LIST_QUERY = DeadLetterListQuerySchema()
AUDIT_QUERY = DeadLetterAuditQuerySchema()
RETRY_BODY = DeadLetterRetrySchema()
REMOVE_BODY = DeadLetterRemoveSchema()
BROKER_RETRY_AFTER_SECONDS = 5


def operator_keys():
    """Return this app's operator keys (OPERATOR_JWKS, or OPERATOR_JWKS_FILE watched for changes)."""
    keys = current_app.extensions.get("operator_keys")
    if keys is None:
        keys = current_app.extensions["operator_keys"] = OperatorKeys(
            current_app.config.get("OPERATOR_JWKS"), current_app.config.get("OPERATOR_JWKS_FILE")
        )
    return keys


def _unauthorized(detail, refused):
    response = error_response(401, "unauthorized", detail)
    # RFC 6750 section 3: no error code when no credentials were sent; invalid_token when they were refused.
    challenge = 'Bearer realm="operations"'
    if refused:
        challenge += ', error="invalid_token"'
    response.headers["WWW-Authenticate"] = challenge
    return response


def _no_keys_detail():
    path = current_app.config.get("OPERATOR_JWKS_FILE")
    if path and not current_app.config.get("OPERATOR_JWKS"):
        return (
            f"main has no operator keys: OPERATOR_JWKS_FILE ({path}) is missing or holds no Ed25519 "
            "public key; write admin's /api/auth/jwks.json there (it is read again when it changes)."
        )
    return (
        "main has no operator keys: set OPERATOR_JWKS to admin's /api/auth/jwks.json (then restart "
        "main), or OPERATOR_JWKS_FILE to a file holding it (README: Dead letters)."
    )


@bp.before_request
def require_operator():
    """Let through only a staff operator token signed by a key of main's JWKS; CORS preflights pass."""
    if request.method == "OPTIONS":
        return None
    keys = operator_keys().current()
    if not keys:
        return error_response(503, "operations_disabled", _no_keys_detail())
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return _unauthorized(
            "Send an operator token from admin as `Authorization: Bearer <token>`.", refused=False
        )
    try:
        claims = verify(token.strip(), keys)
    except TokenRejected as exc:
        logger.info("operator token refused: %s", exc)
        return _unauthorized(f"Operator token refused: {exc}.", refused=True)
    except NotStaff as exc:
        logger.warning("operator token refused: %s", exc)
        return error_response(403, "forbidden", "Only staff may work on dead letters.")
    g.operator = claims["sub"]
    return None


def _invalid(messages):
    """Return the 400 naming each bad parameter or property; body-wide problems under non_field_errors."""
    fields = {}
    for name, errors in messages.items():
        key = "non_field_errors" if name == "_schema" else name
        fields[key] = [str(error) for error in errors] if isinstance(errors, list) else [str(errors)]
    detail = " ".join(f"{name}: {' '.join(errors)}" for name, errors in fields.items())
    return error_response(400, "invalid", detail, fields)


def _body(schema):
    """Return the request's JSON object loaded by schema; raise ValidationError when it is not one."""
    if not request.is_json:
        raise ValidationError("Send a JSON object with Content-Type: application/json.")
    try:
        # Not request.get_json: it lets a RecursionError (deeply nested arrays) through as a 500.
        data = json.loads(request.get_data())
    except (ValueError, RecursionError):
        raise ValidationError("The body is not valid JSON.") from None
    return schema.load(data)


def _broker_down(exc):
    response = error_response(503, "broker_unavailable", str(exc))
    response.headers["Retry-After"] = str(BROKER_RETRY_AFTER_SECONDS)
    return response


def _run(operation, *args, **kwargs):
    """Answer the operation's result as JSON, or its 404/503."""
    try:
        return jsonify(operation(*args, **kwargs))
    except dead_letters.NotFound as exc:
        return error_response(404, "not_found", str(exc))
    except dead_letters.BrokerUnavailable as exc:
        return _broker_down(exc)


@bp.get("/depth")
def depth():
    """Answer how many messages main.dlq holds.
    ---
    get:
      summary: Depth of main's dead-letter queue
      operationId: deadLetterDepth
      tags: [dead-letters]
      security: [{operatorToken: []}]
      responses:
        200:
          description: The queue and its depth.
          content: {application/json: {schema: DeadLetterDepthSchema}}
        401: OperatorUnauthorized
        403: OperatorForbidden
        503: DeadLettersUnavailable
    """
    return _run(dead_letters.depth, current_app.config)


@bp.get("")
def overview():
    """List main.dlq's dead letters grouped by failure, and one page of them.
    ---
    get:
      summary: Dead letters grouped by cause, and one page of them
      operationId: listDeadLetters
      tags: [dead-letters]
      security: [{operatorToken: []}]
      description: >-
        Reads up to 5,000 messages without taking them (`capped` says when the queue holds more).
        `fingerprint` narrows the page to one group; the groups are always all of them.
      parameters:
        - {in: query, schema: DeadLetterListQuerySchema}
      responses:
        200:
          description: Groups, and the page of messages, newest failure first.
          content: {application/json: {schema: DeadLetterOverviewSchema}}
        400: DeadLetterInvalid
        401: OperatorUnauthorized
        403: OperatorForbidden
        503: DeadLettersUnavailable
        414:
          description: "Request line over 4,094 bytes: refused by gunicorn before the app."
    """
    try:
        query = LIST_QUERY.load(request.args)
    except ValidationError as exc:
        return _invalid(exc.messages)
    return _run(dead_letters.overview, current_app.config, **query)


@bp.get("/audit")
def audit():
    """List the latest operator actions on main's dead letters, newest first.
    ---
    get:
      summary: Audit trail of retries, discards and archives
      operationId: deadLetterAudit
      tags: [dead-letters]
      security: [{operatorToken: []}]
      parameters:
        - {in: query, schema: DeadLetterAuditQuerySchema}
      responses:
        200:
          description: The latest actions.
          content: {application/json: {schema: DeadLetterAuditSchema}}
        400: DeadLetterInvalid
        401: OperatorUnauthorized
        403: OperatorForbidden
        503: DeadLettersUnavailable
        414:
          description: "Request line over 4,094 bytes: refused by gunicorn before the app."
    """
    try:
        query = AUDIT_QUERY.load(request.args)
    except ValidationError as exc:
        return _invalid(exc.messages)
    return jsonify({"results": dead_letters.audit(**query)})


@bp.get("/<message_id:message_id>")
def show(message_id):
    """Show one dead letter: payload, headers and the broker's x-death.
    ---
    get:
      summary: One dead letter in full
      operationId: showDeadLetter
      tags: [dead-letters]
      security: [{operatorToken: []}]
      parameters:
        - {in: path, schema: DeadLetterPathSchema}
      responses:
        200:
          description: The message and why it failed.
          content: {application/json: {schema: DeadLetterDetailSchema}}
        401: OperatorUnauthorized
        403: OperatorForbidden
        404: DeadLetterNotFound
        503: DeadLettersUnavailable
    """
    return _run(dead_letters.show, current_app.config, message_id)


@bp.post("/retry")
def retry():
    """Retry one dead letter or a whole group: republished to main's queue with publisher confirms.
    ---
    post:
      summary: Retry one dead letter or a group
      operationId: retryDeadLetters
      tags: [dead-letters]
      security: [{operatorToken: []}]
      description: >-
        Bounded by the queue's depth when it starts: a message that fails again comes back to the
        queue and is not retried again by the same call. Each retry is kept in the audit trail.
      requestBody:
        required: true
        content: {application/json: {schema: DeadLetterRetrySchema}}
      responses:
        200:
          description: What was retried.
          content: {application/json: {schema: DeadLetterRetryResultSchema}}
        400: DeadLetterInvalid
        401: OperatorUnauthorized
        403: OperatorForbidden
        404: DeadLetterNotFound
        413: BodyTooLarge
        503: DeadLettersUnavailable
    """
    try:
        body = _body(RETRY_BODY)
    except ValidationError as exc:
        return _invalid(exc.normalized_messages())
    return _run(dead_letters.retry, current_app.config, g.operator, **body)


def _remove(action):
    try:
        body = _body(REMOVE_BODY)
    except ValidationError as exc:
        return _invalid(exc.normalized_messages())
    reason = body.pop("reason")
    return _run(dead_letters.remove, current_app.config, action, g.operator, reason, **body)


@bp.post("/discard")
def discard():
    """Drop one dead letter or a whole group, each after its audit row (who, when, why) is written.
    ---
    post:
      summary: Discard one dead letter or a group
      operationId: discardDeadLetters
      tags: [dead-letters]
      security: [{operatorToken: []}]
      requestBody:
        required: true
        content: {application/json: {schema: DeadLetterRemoveSchema}}
      responses:
        200:
          description: What was discarded.
          content: {application/json: {schema: DeadLetterDiscardResultSchema}}
        400: DeadLetterInvalid
        401: OperatorUnauthorized
        403: OperatorForbidden
        404: DeadLetterNotFound
        413: BodyTooLarge
        503: DeadLettersUnavailable
    """
    return _remove("discard")


@bp.post("/archive")
def archive():
    """Move one dead letter or a whole group to the audit trail, which keeps each body and its headers.
    ---
    post:
      summary: Archive one dead letter or a group
      operationId: archiveDeadLetters
      tags: [dead-letters]
      security: [{operatorToken: []}]
      requestBody:
        required: true
        content: {application/json: {schema: DeadLetterRemoveSchema}}
      responses:
        200:
          description: What was archived.
          content: {application/json: {schema: DeadLetterArchiveResultSchema}}
        400: DeadLetterInvalid
        401: OperatorUnauthorized
        403: OperatorForbidden
        404: DeadLetterNotFound
        413: BodyTooLarge
        503: DeadLettersUnavailable
    """
    return _remove("archive")
