"""Routes of the catalogue API (the trailing slash is optional)."""

from django.urls import re_path

from products.views import ProductViewSet, RandomUserView

product_list = ProductViewSet.as_view({"get": "list", "post": "create"})
product_detail = ProductViewSet.as_view(
    {"get": "retrieve", "put": "update", "patch": "partial_update", "delete": "destroy"}
)

urlpatterns = [
    re_path(r"^products/?$", product_list, name="product-list"),
    # Up to 18 digits: longer or negative ids are unknown routes and never overflow the database.
    re_path(r"^products/(?P<pk>[0-9]{1,18})/?$", product_detail, name="product-detail"),
    re_path(r"^user/?$", RandomUserView.as_view(), name="random-user"),
]
