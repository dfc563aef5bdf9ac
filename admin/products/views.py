"""Catalogue API: products CRUD (through products.services) and a random user."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers, status, viewsets
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import error_response
from products import services
from products.catalogue import CatalogueFilter, CataloguePagination
from products.models import Product, User
from products.serializers import ProductSerializer, UserIdSerializer

ErrorSerializer = inline_serializer(
    name="Error",
    fields={
        "error": serializers.CharField(),
        "detail": serializers.CharField(),
        "fields": serializers.DictField(required=False),
    },
)
ERR_400 = OpenApiResponse(ErrorSerializer, description="Invalid input (see fields) or bad JSON.")
ERR_401 = OpenApiResponse(ErrorSerializer, description="Not authenticated.")
ERR_403 = OpenApiResponse(ErrorSerializer, description="Not staff, or CSRF check failed.")
ERR_404 = OpenApiResponse(ErrorSerializer, description="No such product.")
ERR_413 = OpenApiResponse(ErrorSerializer, description="Body too large.")
ERR_415 = OpenApiResponse(ErrorSerializer, description="Body is not application/json.")
PRODUCT_ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="Product id.")
WRITE_ERRORS = {400: ERR_400, 401: ERR_401, 403: ERR_403, 413: ERR_413, 415: ERR_415}


@extend_schema_view(
    list=extend_schema(
        summary="List, search, sort and page products",
        description=(
            "A plain JSON list. `X-Total-Count` says how many products match; without `limit` the "
            "list stops at 1,000 and `X-Result-Capped: 1000` says so (page with `limit`/`offset`)."
        ),
        responses={200: ProductSerializer(many=True), 400: ERR_400},
    ),
    create=extend_schema(
        summary="Create a product",
        responses={201: ProductSerializer, **WRITE_ERRORS},
    ),
    retrieve=extend_schema(
        summary="Get a product",
        parameters=[PRODUCT_ID],
        responses={200: ProductSerializer, 404: ERR_404},
    ),
    update=extend_schema(
        summary="Replace a product's title and image",
        parameters=[PRODUCT_ID],
        responses={202: ProductSerializer, 404: ERR_404, **WRITE_ERRORS},
    ),
    partial_update=extend_schema(
        summary="Change some of a product's fields",
        parameters=[PRODUCT_ID],
        responses={202: ProductSerializer, 404: ERR_404, **WRITE_ERRORS},
    ),
    destroy=extend_schema(
        summary="Delete a product",
        parameters=[PRODUCT_ID],
        responses={204: None, 401: ERR_401, 403: ERR_403, 404: ERR_404},
    ),
)
class ProductViewSet(viewsets.ModelViewSet):
    """Products: reads are public, writes need a staff user; every write emits an event."""

    queryset = Product.objects.all().order_by("id")
    serializer_class = ProductSerializer
    filter_backends = [CatalogueFilter]
    pagination_class = CataloguePagination

    def perform_create(self, serializer):
        serializer.instance = services.create_product(**serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.update_product(serializer.instance.pk, **serializer.validated_data)

    def perform_destroy(self, instance):
        services.delete_product(instance.pk)

    def update(self, request, *args, **kwargs):
        """Update and answer 202 Accepted (replicas follow asynchronously)."""
        response = super().update(request, *args, **kwargs)
        response.status_code = status.HTTP_202_ACCEPTED
        return response


class RandomUserView(APIView):
    """GET /api/user: the id of a random user."""

    permission_classes = (AllowAny,)

    @extend_schema(
        summary="Pick a random user id",
        responses={
            200: UserIdSerializer,
            404: OpenApiResponse(ErrorSerializer, "No users."),
        },
    )
    def get(self, request):
        user_id = User.objects.order_by("?").values_list("id", flat=True).first()
        if user_id is None:
            return error_response("not_found", "There are no users.", status.HTTP_404_NOT_FOUND)
        return Response({"id": user_id})
