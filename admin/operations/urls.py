"""Routes under /api/dead-letters/ (trailing slash optional); /api/dead-letters itself is in config/urls.py."""

from django.urls import re_path

from operations import views

urlpatterns = [
    re_path(r"^depth/?$", views.DepthView.as_view(), name="dead-letters-depth"),
    re_path(r"^retry/?$", views.RetryView.as_view(), name="dead-letters-retry"),
    re_path(r"^discard/?$", views.DiscardView.as_view(), name="dead-letters-discard"),
    re_path(r"^archive/?$", views.ArchiveView.as_view(), name="dead-letters-archive"),
    re_path(r"^audit/?$", views.AuditView.as_view(), name="dead-letters-audit"),
    re_path(r"^(?P<message_id>[^/]+)/?$", views.DetailView.as_view(), name="dead-letters-detail"),
]
