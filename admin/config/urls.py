"""Top-level routes: API, auth, health, schema, metrics, Django admin."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from operations.views import OverviewView

from config.api import not_found_json
from config.health import HealthView, ReadyView
from config.metrics import metrics

api_patterns = [
    re_path(r"^health/?$", HealthView.as_view(), name="health"),
    re_path(r"^ready/?$", ReadyView.as_view(), name="ready"),
    re_path(r"^schema/?$", SpectacularAPIView.as_view(), name="schema"),
    re_path(r"^docs/?$", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("auth/", include("accounts.urls")),
    re_path(r"^dead-letters/?$", OverviewView.as_view(), name="dead-letters"),
    path("dead-letters/", include("operations.urls")),
    path("", include("products.urls")),
    # Anything else under /api is a JSON 404, with DEBUG on or off.
    re_path(r"^.*$", not_found_json),
]

urlpatterns = [
    path("api/", include(api_patterns)),
    re_path(r"^api$", not_found_json),
    path("metrics", metrics, name="prometheus-django-metrics"),
    path(settings.DJANGO_ADMIN_URL, admin.site.urls),
]

handler404 = "config.api.handler404"
handler500 = "config.api.handler500"
