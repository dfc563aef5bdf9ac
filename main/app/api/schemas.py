"""marshmallow schemas of /flask/api: the bodies it answers and the parameters it takes.

The OpenAPI document (app.api.openapi) is generated from them. ProductListQuerySchema also parses
the gallery's query string, so the constraints the document states are the ones the route checks.

apispec writes a schema's Meta.unknown as additionalProperties: RAISE (marshmallow's default) as
false, INCLUDE as true, EXCLUDE leaves it out (a body that may gain properties).
"""

from marshmallow import EXCLUDE, INCLUDE, RAISE, Schema, ValidationError, fields, validate, validates_schema

from app.services import GALLERY_SORTS, MAX_GALLERY_LIST

# Product ids are BIGINT: larger numbers cannot name a product (and overflow SQLite binds).
MAX_PRODUCT_ID = 2**63 - 1
MAX_SEARCH_LENGTH = 200
MAX_CURSOR_LENGTH = 100
LIMIT_MESSAGE = f"Must be a whole number, 1..{MAX_GALLERY_LIST}."
CURSOR_MESSAGE = "Not a cursor this list gave out: start again without it."


class _OpenSchema(Schema):
    """A body that may gain properties (additionalProperties left open)."""

    class Meta:
        unknown = EXCLUDE


class _Trimmed(fields.String):
    """A string without its leading and trailing whitespace."""

    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(value, attr, data, **kwargs).strip()


class _Digits(fields.Integer):
    """A whole number written in ASCII digits only: no sign, spaces, underscores or other scripts."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not (isinstance(value, str) and value.isascii() and value.isdigit()):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class ProductListQuerySchema(Schema):
    """The query string of GET /flask/api/products; other parameters are ignored."""

    class Meta:
        unknown = EXCLUDE

    search = _Trimmed(
        load_default="",
        validate=validate.Length(max=MAX_SEARCH_LENGTH, error="At most {max} characters."),
        metadata={"description": "Products whose title contains this text (case-insensitive)."},
    )
    sort = fields.String(
        load_default="id",
        validate=validate.OneOf(GALLERY_SORTS, error="Must be one of {choices}."),
        metadata={
            "description": "id (default), newest (highest id first) or liked (most likes, then newest)."
        },
    )
    limit = _Digits(
        validate=validate.Range(min=1, max=MAX_GALLERY_LIST, error=LIMIT_MESSAGE),
        error_messages={"invalid": LIMIT_MESSAGE},
        metadata={"description": f"Page size, 1..{MAX_GALLERY_LIST}."},
    )
    cursor = fields.String(
        validate=[
            validate.Length(max=MAX_CURSOR_LENGTH, error=CURSOR_MESSAGE),
            validate.Regexp(r"^[A-Za-z0-9_-]+$", error=CURSOR_MESSAGE),
        ],
        metadata={"description": "The previous page's X-Next-Cursor (same sort)."},
    )


class ProductPathSchema(Schema):
    """The product id in a like's path."""

    product_id = fields.Integer(
        required=True,
        validate=validate.Range(min=1, max=MAX_PRODUCT_ID),
        metadata={"description": "Id of the product (admin's id)."},
    )


class ShopperCookieSchema(Schema):
    """The shopper cookie (app.api.shopper)."""

    shopper = fields.String(
        metadata={
            "description": (
                "Signed shopper id. Missing or invalid: the request acts as a new shopper and gets a fresh cookie."
            )
        }
    )


class ProductSchema(Schema):
    """A product of the gallery, with its likes and whether this shopper likes it."""

    class Meta:
        unknown = RAISE

    id = fields.Integer(required=True)
    title = fields.String(required=True)
    image = fields.String(required=True)
    likes = fields.Integer(required=True, validate=validate.Range(min=0))
    liked = fields.Boolean(required=True)
    version = fields.Integer(
        required=True,
        validate=validate.Range(min=0),
        metadata={"description": "admin's version of the product that this replica holds"},
    )
    likes_seq = fields.Integer(
        required=True,
        validate=validate.Range(min=0),
        metadata={"description": "sequence number of this like count (grows with every like and unlike)"},
    )


class LikeResultSchema(Schema):
    """A product's like count after this shopper's like or unlike."""

    class Meta:
        unknown = RAISE

    id = fields.Integer(required=True)
    likes = fields.Integer(required=True, validate=validate.Range(min=0))
    liked = fields.Boolean(required=True)


class HealthSchema(_OpenSchema):
    """Liveness."""

    status = fields.String(required=True, validate=validate.OneOf(["ok"]))


class CheckSchema(Schema):
    """One readiness check; a failed one may say why."""

    class Meta:
        unknown = INCLUDE

    ok = fields.Boolean(required=True)


class OutboxCheckSchema(_OpenSchema):
    """The outbox backlog: unsent events and the age of the oldest."""

    ok = fields.Boolean(required=True)
    pending = fields.Integer(required=True, allow_none=True)
    oldest_age_seconds = fields.Float(required=True, allow_none=True)


class ConsumerCheckSchema(_OpenSchema):
    """The consumer's heartbeat."""

    ok = fields.Boolean(required=True)
    last_seen_age_seconds = fields.Float(required=True, allow_none=True)


class ReadinessChecksSchema(_OpenSchema):
    """Each dependency's readiness check."""

    database = fields.Nested(CheckSchema, required=True)
    broker = fields.Nested(CheckSchema, required=True)
    outbox = fields.Nested(OutboxCheckSchema, required=True)
    consumer = fields.Nested(ConsumerCheckSchema, required=True)


class ReadinessSchema(_OpenSchema):
    """Readiness: ready only when every check is ok."""

    status = fields.String(required=True, validate=validate.OneOf(["ready", "not_ready"]))
    checks = fields.Nested(ReadinessChecksSchema, required=True)


class ErrorSchema(_OpenSchema):
    """Every error body (app.api.errors): a snake_case code, a sentence, and what was wrong per parameter."""

    error = fields.String(required=True)
    detail = fields.String(required=True)
    field_errors = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        data_key="fields",
        metadata={
            "description": (
                "With `bad_parameter` and `invalid`: the messages of each malformed parameter or property."
            )
        },
    )


# ---------------------------------------------------------------------------------------------
# The dead-letter workbench (/flask/api/dead-letters): operator routes, bearer token required
# ---------------------------------------------------------------------------------------------
MAX_DEAD_LETTER_PAGE = 200
MAX_DEAD_LETTER_OFFSET = 100_000
MAX_REASON_LENGTH = 500
# AMQP's message_id is a short string: 255 bytes at most.
MAX_MESSAGE_ID_LENGTH = 255
FINGERPRINT_PATTERN = r"^[0-9a-f]{16}$"
FINGERPRINT_MESSAGE = "Must be a group's fingerprint: 16 lowercase hexadecimal characters."
PAGE_MESSAGE = f"Must be a whole number, 1..{MAX_DEAD_LETTER_PAGE}."
OFFSET_MESSAGE = f"Must be a whole number, 0..{MAX_DEAD_LETTER_OFFSET}."
SELECTOR_MESSAGE = "Give exactly one of message_id or fingerprint."


def _fingerprint(**kwargs):
    return fields.String(
        validate=validate.Regexp(FINGERPRINT_PATTERN, error=FINGERPRINT_MESSAGE),
        metadata={"description": "A group: 16 hex characters of the failure's fingerprint."},
        **kwargs,
    )


def _page_size():
    return _Digits(
        load_default=50,
        validate=validate.Range(min=1, max=MAX_DEAD_LETTER_PAGE, error=PAGE_MESSAGE),
        error_messages={"invalid": PAGE_MESSAGE},
        metadata={"description": f"Page size, 1..{MAX_DEAD_LETTER_PAGE} (default 50)."},
    )


class DeadLetterListQuerySchema(Schema):
    """The query string of GET /flask/api/dead-letters; other parameters are ignored."""

    class Meta:
        unknown = EXCLUDE

    fingerprint = _fingerprint()
    limit = _page_size()
    offset = _Digits(
        load_default=0,
        validate=validate.Range(min=0, max=MAX_DEAD_LETTER_OFFSET, error=OFFSET_MESSAGE),
        error_messages={"invalid": OFFSET_MESSAGE},
        metadata={"description": "How many messages of the list to skip (default 0)."},
    )


class DeadLetterAuditQuerySchema(Schema):
    """The query string of GET /flask/api/dead-letters/audit."""

    class Meta:
        unknown = EXCLUDE

    limit = _page_size()


class DeadLetterPathSchema(Schema):
    """A dead letter's message id in the path."""

    message_id = fields.String(
        required=True,
        validate=validate.Length(min=1, max=MAX_MESSAGE_ID_LENGTH),
        metadata={"description": "The message's AMQP message_id (the event id)."},
    )


class _SelectorSchema(Schema):
    """One message (message_id) or one group (fingerprint), never both; unknown properties are refused."""

    class Meta:
        unknown = RAISE

    message_id = fields.String(
        validate=validate.Length(min=1, max=MAX_MESSAGE_ID_LENGTH),
        metadata={"description": "One message, by its message_id."},
    )
    fingerprint = _fingerprint()

    @validates_schema
    def _one_selector(self, data, **kwargs):
        if ("message_id" in data) == ("fingerprint" in data):
            raise ValidationError(SELECTOR_MESSAGE)


class DeadLetterRetrySchema(_SelectorSchema):
    """What to retry: one message or one group (exactly one of message_id and fingerprint)."""

    reason = _Trimmed(
        validate=validate.Length(max=MAX_REASON_LENGTH, error="At most {max} characters."),
        metadata={"description": "Optional: why, kept in the audit trail."},
    )


class DeadLetterRemoveSchema(_SelectorSchema):
    """What to discard or archive, and why (exactly one of message_id and fingerprint)."""

    reason = _Trimmed(
        required=True,
        validate=validate.Length(min=1, max=MAX_REASON_LENGTH, error="Say why in 1..500 characters."),
        metadata={"description": "Why, kept in the audit trail (1..500 characters)."},
    )


class DeadLetterDepthSchema(_OpenSchema):
    """How many messages the dead-letter queue holds."""

    queue = fields.String(required=True)
    depth = fields.Integer(required=True, validate=validate.Range(min=0))


class DeadLetterSummarySchema(_OpenSchema):
    """One dead letter as the list shows it: the event it carried and why it failed."""

    message_id = fields.String(required=True, allow_none=True)
    type = fields.String(required=True, allow_none=True)
    routing_key = fields.String(required=True, allow_none=True)
    fingerprint = fields.String(required=True)
    reason = fields.String(required=True, allow_none=True)
    exception_type = fields.String(required=True, allow_none=True)
    exception_message = fields.String(required=True, allow_none=True)
    where = fields.String(required=True, allow_none=True)
    attempts = fields.Integer(required=True)
    first_failed_at = fields.String(required=True, allow_none=True)
    last_failed_at = fields.String(required=True, allow_none=True)
    host = fields.String(required=True, allow_none=True)
    source = fields.String(
        required=True,
        validate=validate.OneOf(["consumer", "broker"]),
        metadata={
            "description": "consumer: it gave up and said why; broker: dead-lettered by RabbitMQ (x-death)."
        },
    )
    retried = fields.Integer(
        required=True, metadata={"description": "How many times it was retried already."}
    )


class DeadLetterGroupSchema(_OpenSchema):
    """Dead letters with one cause (fingerprint: exception type and where it was raised)."""

    fingerprint = fields.String(required=True)
    reason = fields.String(required=True, allow_none=True)
    exception_type = fields.String(required=True, allow_none=True)
    exception_message = fields.String(required=True, allow_none=True)
    where = fields.String(required=True, allow_none=True)
    event_types = fields.List(fields.String(), required=True)
    count = fields.Integer(required=True)
    first_seen = fields.String(required=True, allow_none=True)
    last_seen = fields.String(required=True, allow_none=True)


class DeadLetterOverviewSchema(_OpenSchema):
    """The dead-letter queue: its groups, and one page of its messages, newest failure first."""

    queue = fields.String(required=True)
    depth = fields.Integer(required=True)
    scanned = fields.Integer(required=True, metadata={"description": "Messages read (at most 5,000)."})
    capped = fields.Boolean(required=True, metadata={"description": "The queue holds more than were read."})
    oldest_at = fields.String(required=True, allow_none=True)
    groups = fields.List(fields.Nested(DeadLetterGroupSchema), required=True)
    count = fields.Integer(required=True, metadata={"description": "Messages matching the filter."})
    results = fields.List(fields.Nested(DeadLetterSummarySchema), required=True)


class DeadLetterDetailSchema(DeadLetterSummarySchema):
    """One dead letter in full: its payload, its headers and the broker's x-death."""

    payload = fields.Raw(
        required=True,
        allow_none=True,
        metadata={"description": "The body parsed as JSON; null when it is not JSON."},
    )
    body = fields.String(required=True, metadata={"description": "The body as text (at most 64 KiB)."})
    headers = fields.Dict(required=True, keys=fields.String())
    x_death = fields.List(fields.Dict(), required=True)


class DeadLetterRetryResultSchema(_OpenSchema):
    """What a retry did: matched messages, retried ones (republished and confirmed) and their ids."""

    matched = fields.Integer(required=True)
    retried = fields.Integer(required=True)
    depth = fields.Integer(required=True, metadata={"description": "The queue's depth when the retry began."})
    message_ids = fields.List(fields.String(allow_none=True), required=True)


class DeadLetterDiscardResultSchema(_OpenSchema):
    """The messages dropped, each after its audit row was written."""

    discarded = fields.Integer(required=True)
    message_ids = fields.List(fields.String(allow_none=True), required=True)


class DeadLetterArchiveResultSchema(_OpenSchema):
    """The messages moved to the audit trail (body and headers kept there)."""

    archived = fields.Integer(required=True)
    message_ids = fields.List(fields.String(allow_none=True), required=True)


class DeadLetterAuditEntrySchema(_OpenSchema):
    """One operator action on a dead letter."""

    id = fields.Integer(required=True)
    action = fields.String(required=True, validate=validate.OneOf(["retry", "discard", "archive"]))
    message_id = fields.String(required=True, allow_none=True)
    event_type = fields.String(required=True, allow_none=True)
    fingerprint = fields.String(required=True, allow_none=True)
    actor = fields.String(required=True, metadata={"description": "admin's username of the operator."})
    reason = fields.String(required=True, allow_none=True)
    at = fields.String(required=True)
    archived = fields.Boolean(
        required=True, metadata={"description": "The message's body and headers are kept."}
    )


class DeadLetterAuditSchema(_OpenSchema):
    """The latest operator actions, newest first."""

    results = fields.List(fields.Nested(DeadLetterAuditEntrySchema), required=True)
