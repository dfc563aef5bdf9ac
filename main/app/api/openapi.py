"""The OpenAPI 3 document of the main service (kept beside the routes; a test compares both)."""

import copy

_ERROR = {"$ref": "#/components/schemas/Error"}


def _error(description, headers=None):
    response = {
        "description": description,
        "content": {"application/json": {"schema": _ERROR}},
    }
    if headers:
        response["headers"] = headers
    return response


def _json(description, schema, headers=None):
    response = {
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }
    if headers:
        response["headers"] = headers
    return response


_SET_COOKIE = {
    "Set-Cookie": {
        "description": "A new signed `shopper` cookie when the request had no valid one.",
        "schema": {"type": "string"},
        "required": False,
    }
}
_RETRY_AFTER = {
    "Retry-After": {"description": "Seconds to wait before trying again.", "schema": {"type": "integer"}},
}
_SHOPPER_COOKIE = {
    "name": "shopper",
    "in": "cookie",
    "required": False,
    "description": (
        "Signed shopper id. Missing or invalid: the request acts as a new shopper and gets a fresh cookie."
    ),
    "schema": {"type": "string"},
}
_PRODUCT_ID = {
    "name": "product_id",
    "in": "path",
    "required": True,
    "description": "Id of the product (admin's id).",
    "schema": {"type": "integer", "minimum": 1, "maximum": 9223372036854775807},
}


def _like_operation(summary, operation_id, ok, not_found):
    return {
        "summary": summary,
        "operationId": operation_id,
        "tags": ["likes"],
        "parameters": [_SHOPPER_COOKIE],
        "responses": {
            "200": _json(ok, {"$ref": "#/components/schemas/LikeResult"}, _SET_COOKIE),
            "400": _error("Already liked (`already_liked`) or a request body was sent (`unexpected_body`)."),
            "403": _error(
                "A cross-site request (`cross_site`): likes come only from the shop's own pages "
                "(Sec-Fetch-Site / Origin) or an origin in CORS_ALLOWED_ORIGINS."
            ),
            "404": _error(not_found),
            "405": _error("Method not allowed."),
            "413": _error("Request body too large."),
            "429": _error(
                "Rate limited (`too_many_requests`): too many likes from this address "
                "(LIKES_RATE_LIMIT), or no cookie and too many new shoppers from it "
                "(NEW_SHOPPER_RATE_LIMIT).",
                _RETRY_AFTER,
            ),
        },
    }


_CHECK = {
    "type": "object",
    "required": ["ok"],
    "properties": {"ok": {"type": "boolean"}},
    "additionalProperties": True,
}

DOCUMENT = {
    "openapi": "3.0.3",
    "info": {
        "title": "main service",
        "version": "1.0.0",
        "description": "Shop front API: products (a replica of admin's) and likes per anonymous shopper.",
    },
    "paths": {
        "/flask/api/products": {
            "get": {
                "summary": "List live products with likes and whether this shopper likes each",
                "operationId": "listProducts",
                "tags": ["products"],
                "description": (
                    "A plain JSON list. Without `limit` it stops at 1,000 products and "
                    "`X-Result-Capped: 1000` says so; with `limit`, `X-Next-Cursor` names the next page."
                ),
                "parameters": [
                    _SHOPPER_COOKIE,
                    {
                        "name": "search",
                        "in": "query",
                        "required": False,
                        "description": "Products whose title contains this text (case-insensitive).",
                        "schema": {"type": "string", "maxLength": 200},
                    },
                    {
                        "name": "sort",
                        "in": "query",
                        "required": False,
                        "description": "id (default), newest (highest id first) or liked (most likes, then newest).",
                        "schema": {"type": "string", "enum": ["id", "newest", "liked"], "default": "id"},
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "description": "Page size, 1..1000.",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                    },
                    {
                        "name": "cursor",
                        "in": "query",
                        "required": False,
                        "description": "The previous page's X-Next-Cursor (same sort).",
                        "schema": {"type": "string", "maxLength": 100, "pattern": "^[A-Za-z0-9_-]+$"},
                    },
                ],
                "responses": {
                    "200": _json(
                        "Products in the asked order.",
                        {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/Product"},
                        },
                        {
                            **_SET_COOKIE,
                            "X-Next-Cursor": {
                                "description": "With limit, when more products follow: pass it as cursor.",
                                "schema": {"type": "string"},
                            },
                            "X-Result-Capped": {
                                "description": "Without limit, when the list stopped at 1,000 products.",
                                "schema": {"type": "integer"},
                            },
                        },
                    ),
                    "400": _error(
                        "A malformed search, sort, limit or cursor (`bad_parameter`), named in `fields`."
                    ),
                    "414": {
                        "description": "Request line over 4,094 bytes: refused by gunicorn before the app."
                    },
                },
            }
        },
        "/flask/api/products/{product_id}/like": {
            "parameters": [_PRODUCT_ID],
            "post": _like_operation(
                "Like a product",
                "likeProduct",
                "Liked; `likes` is the new count.",
                "Unknown or deleted product.",
            ),
            "delete": _like_operation(
                "Withdraw a like",
                "unlikeProduct",
                "Like withdrawn; `likes` is the new count.",
                "Unknown or deleted product (`not_found`), or this shopper does not like it (`not_liked`).",
            ),
        },
        "/flask/api/health": {
            "get": {
                "summary": "Liveness",
                "operationId": "health",
                "tags": ["operations"],
                "responses": {
                    "200": _json(
                        "The process serves requests.",
                        {
                            "type": "object",
                            "required": ["status"],
                            "properties": {"status": {"enum": ["ok"]}},
                        },
                    )
                },
            }
        },
        "/flask/api/ready": {
            "get": {
                "summary": "Readiness: database, broker, outbox backlog, consumer heartbeat",
                "operationId": "ready",
                "tags": ["operations"],
                "responses": {
                    "200": _json("Ready.", {"$ref": "#/components/schemas/Readiness"}),
                    "503": _json(
                        "Not ready; see which check failed.",
                        {"$ref": "#/components/schemas/Readiness"},
                    ),
                },
            }
        },
        "/flask/api/openapi.json": {
            "get": {
                "summary": "This OpenAPI document",
                "operationId": "openapi",
                "tags": ["operations"],
                "responses": {"200": _json("OpenAPI 3 document.", {"type": "object"})},
            }
        },
        "/flask/api/docs": {
            "get": {
                "summary": "Swagger UI for this document",
                "operationId": "docs",
                "tags": ["operations"],
                "responses": {
                    "200": {
                        "description": "HTML page.",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/flask/api/docs/assets/{filename}": {
            "get": {
                "summary": "Static files of Swagger UI",
                "operationId": "docsAssets",
                "tags": ["operations"],
                "parameters": [
                    {
                        "name": "filename",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {
                    "200": {
                        "description": "The file.",
                        "content": {"*/*": {"schema": {"type": "string"}}},
                    },
                    "404": _error("No such asset."),
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "operationId": "metrics",
                "tags": ["operations"],
                "responses": {
                    "200": {
                        "description": "Prometheus text format.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
    },
    "components": {
        "schemas": {
            "Product": {
                "type": "object",
                "required": ["id", "title", "image", "likes", "liked", "version", "likes_seq"],
                "properties": {
                    "id": {"type": "integer"},
                    "title": {"type": "string"},
                    "image": {"type": "string"},
                    "likes": {"type": "integer", "minimum": 0},
                    "liked": {"type": "boolean"},
                    "version": {
                        "type": "integer",
                        "minimum": 0,
                        "description": "admin's version of the product that this replica holds",
                    },
                    "likes_seq": {
                        "type": "integer",
                        "minimum": 0,
                        "description": "sequence number of this like count (grows with every like and unlike)",
                    },
                },
                "additionalProperties": False,
            },
            "LikeResult": {
                "type": "object",
                "required": ["id", "likes", "liked"],
                "properties": {
                    "id": {"type": "integer"},
                    "likes": {"type": "integer", "minimum": 0},
                    "liked": {"type": "boolean"},
                },
                "additionalProperties": False,
            },
            "Readiness": {
                "type": "object",
                "required": ["status", "checks"],
                "properties": {
                    "status": {"enum": ["ready", "not_ready"]},
                    "checks": {
                        "type": "object",
                        "required": ["database", "broker", "outbox", "consumer"],
                        "properties": {
                            "database": _CHECK,
                            "broker": _CHECK,
                            "outbox": {
                                "type": "object",
                                "required": ["ok", "pending", "oldest_age_seconds"],
                                "properties": {
                                    "ok": {"type": "boolean"},
                                    "pending": {"type": "integer", "nullable": True},
                                    "oldest_age_seconds": {
                                        "type": "number",
                                        "nullable": True,
                                    },
                                },
                            },
                            "consumer": {
                                "type": "object",
                                "required": ["ok", "last_seen_age_seconds"],
                                "properties": {
                                    "ok": {"type": "boolean"},
                                    "last_seen_age_seconds": {
                                        "type": "number",
                                        "nullable": True,
                                    },
                                },
                            },
                        },
                    },
                },
            },
            "Error": {
                "type": "object",
                "required": ["error", "detail"],
                "properties": {
                    "error": {"type": "string"},
                    "detail": {"type": "string"},
                    "fields": {"type": "object"},
                },
            },
        }
    },
}


def openapi_document():
    """Return a copy of the OpenAPI document."""
    return copy.deepcopy(DOCUMENT)
