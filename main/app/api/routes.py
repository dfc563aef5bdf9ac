"""Routes of /flask/api: products, likes, health, readiness, OpenAPI and docs. No SQL here."""

import os

from flask import Blueprint, current_app, jsonify, request, send_from_directory
from werkzeug.routing import IntegerConverter

from app import services
from app.api.docs import DOCS_HTML, swagger_ui_dist
from app.api.errors import error_response
from app.api.guard import cross_site_refusal, likes_limit
from app.api.openapi import openapi_document
from app.api.shopper import current_shopper, set_shopper_cookie

bp = Blueprint("api", __name__, url_prefix="/flask/api")

# Product ids are BIGINT: larger numbers cannot name a product (and overflow SQLite binds).
MAX_PRODUCT_ID = 2**63 - 1


class ProductIdConverter(IntegerConverter):
    """Path segment of a product id: 1..2**63-1, anything else is a 404."""

    def __init__(self, url_map):
        super().__init__(url_map, min=1, max=MAX_PRODUCT_ID)


bp.after_request(set_shopper_cookie)


def _reject_body():
    """Return a 403 for a cross-site write, a 400/413 when a request that takes no body carries one, else None."""
    refusal = cross_site_refusal()
    if refusal is not None:
        return error_response(
            403, "cross_site", f"Likes come only from this shop's own pages, not {refusal}."
        )
    length = request.content_length
    chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    if length and length > current_app.config["MAX_CONTENT_LENGTH"]:
        return error_response(413, "request_entity_too_large", "This endpoint takes no request body.")
    if length or chunked:
        return error_response(400, "unexpected_body", "This endpoint takes no request body.")
    return None


MAX_SEARCH_LENGTH = 200


def _limit_parameter():
    raw = request.args.get("limit")
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 5 or not 1 <= int(raw) <= services.MAX_GALLERY_LIST:
        raise services.BadListQuery("limit", f"Must be a whole number, 1..{services.MAX_GALLERY_LIST}.")
    return int(raw)


@bp.get("/products")
def list_products():
    """List live products with their likes and whether this shopper likes each.

    ?search= (title), ?sort=id|newest|liked, ?limit= and ?cursor= (X-Next-Cursor of the page
    before). Always a plain list; without limit it stops at 1,000 and X-Result-Capped says so.
    """
    try:
        search = request.args.get("search", "").strip()
        if len(search) > MAX_SEARCH_LENGTH:
            raise services.BadListQuery("search", f"At most {MAX_SEARCH_LENGTH} characters.")
        cursor = request.args.get("cursor")
        if cursor is not None and len(cursor) > 100:
            raise services.BadListQuery("cursor", "Not a cursor this list gave out: start again without it.")
        products, next_cursor, capped = services.list_products(
            current_shopper(request),
            search=search,
            sort=request.args.get("sort", "id"),
            limit=_limit_parameter(),
            cursor=cursor,
        )
    except services.BadListQuery as exc:
        parameter, message = exc.args
        return error_response(400, "bad_parameter", f"{parameter}: {message}", {parameter: [message]})
    response = jsonify(products)
    if next_cursor:
        response.headers["X-Next-Cursor"] = next_cursor
    if capped:
        response.headers["X-Result-Capped"] = str(services.MAX_GALLERY_LIST)
    return response


@bp.post("/products/<product_id:product_id>/like")
@likes_limit
def like_product(product_id):
    """Like a product as this shopper."""
    rejected = _reject_body()
    if rejected is not None:
        return rejected
    shopper_id = current_shopper(request, write=True)
    try:
        result = services.like(shopper_id, product_id)
    except services.ProductNotFound:
        return error_response(404, "not_found", f"Product {product_id} does not exist.")
    except services.AlreadyLiked:
        return error_response(400, "already_liked", f"You already like product {product_id}.")
    _wake_relay()
    return jsonify(result)


@bp.delete("/products/<product_id:product_id>/like")
@likes_limit
def unlike_product(product_id):
    """Withdraw this shopper's like of a product."""
    rejected = _reject_body()
    if rejected is not None:
        return rejected
    shopper_id = current_shopper(request, write=True)
    try:
        result = services.unlike(shopper_id, product_id)
    except services.ProductNotFound:
        return error_response(404, "not_found", f"Product {product_id} does not exist.")
    except services.NotLiked:
        return error_response(404, "not_liked", f"You do not like product {product_id}.")
    _wake_relay()
    return jsonify(result)


def _wake_relay():
    from app.messaging.outbox import wake_relay

    wake_relay(current_app.config.get("OUTBOX_WAKEUP_ADDR"))


@bp.get("/health")
def health():
    """Answer 200 while the process serves requests (liveness)."""
    return jsonify({"status": "ok"})


@bp.get("/ready")
def ready():
    """Answer 200 when database, broker, outbox and consumer are healthy, else 503."""
    ok, checks = services.readiness(current_app.config)
    return jsonify({"status": "ready" if ok else "not_ready", "checks": checks}), (200 if ok else 503)


@bp.get("/openapi.json")
def openapi():
    """Serve the OpenAPI 3 document of this API."""
    return jsonify(openapi_document())


@bp.get("/docs")
def docs():
    """Serve the Swagger UI page for the OpenAPI document."""
    return DOCS_HTML, 200, {"Content-Type": "text/html; charset=utf-8"}


@bp.get("/docs/assets/<path:filename>")
def docs_assets(filename):
    """Serve Swagger UI's bundled static files (shipped by the flask-swagger-ui package)."""
    if os.path.basename(filename) != filename:
        return error_response(404, "not_found", "No such asset.")
    return send_from_directory(swagger_ui_dist(), filename, max_age=86400)
