"""Search, sort and page the product list: GET /api/products?search=&ordering=&limit=&offset=.

- `search`: products whose title contains the text (case-insensitive), or whose id it is.
- `ordering`: `title`, `id`, `likes` or `created`, `-` first for descending; ties break on id.
- `limit` (1..1000) and `offset` (>= 0): one page; `X-Total-Count` says how many match.
Without `limit` the answer stays the plain list older clients expect, capped at MAX_LIST
products: `X-Total-Count` then says how many there are and `X-Result-Capped: 1000` that the
list stops there (page with `limit`/`offset` for the rest). Bad values answer 400, naming the
parameter; nothing is silently ignored.
"""

from __future__ import annotations

from django.db import connection
from django.db.models import Q
from django.db.models.functions import Lower
from rest_framework.exceptions import ValidationError
from rest_framework.filters import BaseFilterBackend
from rest_framework.pagination import BasePagination
from rest_framework.response import Response

MAX_LIST = 1000
MAX_SEARCH_LENGTH = 200
ORDERING_FIELDS = {"title": "title", "id": "id", "likes": "likes", "created": "created_at"}
ORDERING_CHOICES = [*ORDERING_FIELDS, *(f"-{name}" for name in ORDERING_FIELDS)]


def _whole_number(request, name: str, low: int, high: int | None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    bound = f"{low}..{high}" if high is not None else f"{low} or more"
    if not raw.isdigit() or len(raw) > 12 or not (low <= int(raw) <= (high if high is not None else 10**12)):
        raise ValidationError({name: [f"Must be a whole number, {bound}; got {raw[:50]!r}."]})
    return int(raw)


class CatalogueFilter(BaseFilterBackend):
    """`search` and `ordering`, validated."""

    def filter_queryset(self, request, queryset, view):
        search = request.query_params.get("search", "").strip()
        if len(search) > MAX_SEARCH_LENGTH:
            raise ValidationError({"search": [f"At most {MAX_SEARCH_LENGTH} characters."]})
        if search:
            match = Q(title__icontains=search)
            if search.isdigit() and len(search) <= 18:
                match |= Q(pk=int(search))
            queryset = queryset.filter(match)
        ordering = request.query_params.get("ordering")
        if ordering is not None:
            if ordering not in ORDERING_CHOICES:
                raise ValidationError(
                    {"ordering": [f"Must be one of {', '.join(ORDERING_CHOICES)}; got {ordering[:50]!r}."]}
                )
            descending = ordering.startswith("-")
            field = ORDERING_FIELDS[ordering.lstrip("-")]
            if field == "title" and connection.vendor == "sqlite":
                # Titles sort case-insensitively everywhere: MySQL's utf8mb4 collation does it on
                # the (title, id) index; SQLite compares bytes, so it sorts by lower(title).
                key = Lower("title")
                key = key.desc() if descending else key.asc()
                queryset = queryset.order_by(key, "-id" if descending else "id")
            else:
                prefix = "-" if descending else ""
                queryset = queryset.order_by(f"{prefix}{field}", f"{prefix}id")
        return queryset

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": "search",
                "required": False,
                "in": "query",
                "description": "Products whose title contains this text (case-insensitive), or whose id it is.",
                "schema": {"type": "string", "maxLength": MAX_SEARCH_LENGTH},
            },
            {
                "name": "ordering",
                "required": False,
                "in": "query",
                "description": "Sort by title, id, likes or created; a leading - sorts descending. Default: id.",
                "schema": {"type": "string", "enum": ORDERING_CHOICES},
            },
        ]


class CataloguePagination(BasePagination):
    """limit/offset pages, or the capped plain list; the answer is always a JSON list."""

    def paginate_queryset(self, queryset, request, view=None):
        limit = _whole_number(request, "limit", 1, MAX_LIST)
        offset = _whole_number(request, "offset", 0, None)
        self.count = queryset.count()
        self.capped = limit is None and self.count > MAX_LIST
        start = offset or 0
        return list(queryset[start : start + (limit or MAX_LIST)])

    def get_paginated_response(self, data):
        headers = {"X-Total-Count": str(self.count)}
        if self.capped:
            headers["X-Result-Capped"] = str(MAX_LIST)
        return Response(data, headers=headers)

    def get_paginated_response_schema(self, schema):
        return schema

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": "limit",
                "required": False,
                "in": "query",
                "description": f"Page size, 1..{MAX_LIST}. Without it: the first {MAX_LIST} products.",
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIST},
            },
            {
                "name": "offset",
                "required": False,
                "in": "query",
                "description": "How many matching products to skip.",
                "schema": {"type": "integer", "minimum": 0},
            },
        ]
