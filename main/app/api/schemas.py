"""marshmallow schemas of /flask/api: the bodies it answers and the parameters it takes.

The OpenAPI document (app.api.openapi) is generated from them. ProductListQuerySchema also parses
the gallery's query string, so the constraints the document states are the ones the route checks.

apispec writes a schema's Meta.unknown as additionalProperties: RAISE (marshmallow's default) as
false, INCLUDE as true, EXCLUDE leaves it out (a body that may gain properties).
"""

from marshmallow import EXCLUDE, INCLUDE, RAISE, Schema, fields, validate

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
        metadata={"description": "With `bad_parameter`: the messages of each malformed parameter."},
    )
