"""Routes of /flask/api: products, likes, health, readiness, OpenAPI and docs. No SQL here.

Each view's docstring carries its OpenAPI operations in YAML after `---`; app.api.openapi builds
the document from them and the schemas in app.api.schemas.
"""

import os

from flask import Blueprint, current_app, jsonify, request, send_from_directory
from marshmallow import ValidationError
from werkzeug.routing import IntegerConverter

from app import services
from app.api.docs import DOCS_HTML, swagger_ui_dist
from app.api.errors import error_response
from app.api.guard import cross_site_refusal, likes_limit
from app.api.openapi import openapi_document
from app.api.schemas import MAX_PRODUCT_ID, ProductListQuerySchema
from app.api.shopper import current_shopper, set_shopper_cookie

bp = Blueprint("api", __name__, url_prefix="/flask/api")


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


LIST_QUERY = ProductListQuerySchema()


def _bad_parameters(messages):
    """Return the 400 that names each malformed parameter with its messages."""
    # dict.fromkeys: the cursor's length and pattern checks share one message; say it once.
    fields = {name: list(dict.fromkeys(errors)) for name, errors in messages.items()}
    detail = " ".join(f"{name}: {' '.join(errors)}" for name, errors in fields.items())
    return error_response(400, "bad_parameter", detail, fields)


@bp.get("/products")
def list_products():
    """List live products with their likes and whether this shopper likes each.
    ---
    get:
      summary: List live products with likes and whether this shopper likes each
      operationId: listProducts
      tags: [products]
      description: >-
        A plain JSON list. Without `limit` it stops at 1,000 products and `X-Result-Capped: 1000`
        says so; with `limit`, `X-Next-Cursor` names the next page.
      parameters:
        - {in: cookie, schema: ShopperCookieSchema}
        - {in: query, schema: ProductListQuerySchema}
      responses:
        200:
          description: Products in the asked order.
          headers: {Set-Cookie: SetShopperCookie, X-Next-Cursor: NextCursor, X-Result-Capped: ResultCapped}
          content:
            application/json:
              schema: {type: array, items: ProductSchema}
        400:
          description: A malformed search, sort, limit or cursor (`bad_parameter`), named in `fields`.
          content: {application/json: {schema: ErrorSchema}}
        414:
          description: "Request line over 4,094 bytes: refused by gunicorn before the app."
    """
    try:
        products, next_cursor, capped = services.list_products(
            current_shopper(request), **LIST_QUERY.load(request.args)
        )
    except ValidationError as exc:
        return _bad_parameters(exc.messages)
    except services.BadListQuery as exc:
        parameter, message = exc.args
        return _bad_parameters({parameter: [message]})
    response = jsonify(products)
    if next_cursor:
        response.headers["X-Next-Cursor"] = next_cursor
    if capped:
        response.headers["X-Result-Capped"] = str(services.MAX_GALLERY_LIST)
    return response


@bp.post("/products/<product_id:product_id>/like")
@likes_limit
def like_product(product_id):
    """Like a product as this shopper.
    ---
    post:
      summary: Like a product
      operationId: likeProduct
      tags: [likes]
      parameters:
        - {in: path, schema: ProductPathSchema}
        - {in: cookie, schema: ShopperCookieSchema}
      responses:
        200:
          description: Liked; `likes` is the new count.
          headers: {Set-Cookie: SetShopperCookie}
          content: {application/json: {schema: LikeResultSchema}}
        400:
          description: Already liked (`already_liked`) or a request body was sent (`unexpected_body`).
          content: {application/json: {schema: ErrorSchema}}
        403: CrossSite
        404:
          description: Unknown or deleted product (`not_found`).
          content: {application/json: {schema: ErrorSchema}}
        405: MethodNotAllowed
        413: BodyTooLarge
        429: LikesRateLimited
    """
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
    """Withdraw this shopper's like of a product.
    ---
    delete:
      summary: Withdraw a like
      operationId: unlikeProduct
      tags: [likes]
      parameters:
        - {in: path, schema: ProductPathSchema}
        - {in: cookie, schema: ShopperCookieSchema}
      responses:
        200:
          description: Like withdrawn; `likes` is the new count.
          headers: {Set-Cookie: SetShopperCookie}
          content: {application/json: {schema: LikeResultSchema}}
        400:
          description: A request body was sent (`unexpected_body`).
          content: {application/json: {schema: ErrorSchema}}
        403: CrossSite
        404:
          description: Unknown or deleted product (`not_found`), or this shopper does not like it (`not_liked`).
          content: {application/json: {schema: ErrorSchema}}
        405: MethodNotAllowed
        413: BodyTooLarge
        429: LikesRateLimited
    """
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
    """Answer 200 while the process serves requests (liveness).
    ---
    get:
      summary: Liveness
      operationId: health
      tags: [operations]
      responses:
        200:
          description: The process serves requests.
          content: {application/json: {schema: HealthSchema}}
    """
    return jsonify({"status": "ok"})


@bp.get("/ready")
def ready():
    """Answer 200 when database, broker, outbox and consumer are healthy, else 503.
    ---
    get:
      summary: "Readiness: database, broker, outbox backlog, consumer heartbeat"
      operationId: ready
      tags: [operations]
      responses:
        200:
          description: Ready.
          content: {application/json: {schema: ReadinessSchema}}
        503:
          description: Not ready; see which check failed.
          content: {application/json: {schema: ReadinessSchema}}
    """
    ok, checks = services.readiness(current_app.config)
    return jsonify({"status": "ready" if ok else "not_ready", "checks": checks}), (200 if ok else 503)


@bp.get("/openapi.json")
def openapi():
    """Serve the OpenAPI 3 document of this API, generated from these routes.
    ---
    get:
      summary: This OpenAPI document
      operationId: openapi
      tags: [operations]
      responses:
        200:
          description: OpenAPI 3 document.
          content: {application/json: {schema: {type: object}}}
    """
    return jsonify(openapi_document(current_app))


@bp.get("/docs")
def docs():
    """Serve the Swagger UI page for the OpenAPI document.
    ---
    get:
      summary: Swagger UI for this document
      operationId: docs
      tags: [operations]
      responses:
        200:
          description: HTML page.
          content: {text/html: {schema: {type: string}}}
    """
    return DOCS_HTML, 200, {"Content-Type": "text/html; charset=utf-8"}


@bp.get("/docs/assets/<path:filename>")
def docs_assets(filename):
    """Serve Swagger UI's bundled static files (shipped by the flask-swagger-ui package).
    ---
    get:
      summary: Static files of Swagger UI
      operationId: docsAssets
      tags: [operations]
      parameters:
        - {name: filename, in: path, required: true, schema: {type: string}}
      responses:
        200:
          description: The file.
          content: {"*/*": {schema: {type: string}}}
        404:
          description: No such asset.
          content: {application/json: {schema: ErrorSchema}}
    """
    if os.path.basename(filename) != filename:
        return error_response(404, "not_found", "No such asset.")
    return send_from_directory(swagger_ui_dist(), filename, max_age=86400)
