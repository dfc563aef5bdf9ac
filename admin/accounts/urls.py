"""Routes of the auth endpoints (trailing slash optional)."""

from django.urls import re_path

from accounts import views

urlpatterns = [
    re_path(r"^csrf/?$", views.CsrfView.as_view(), name="auth-csrf"),
    re_path(r"^login/?$", views.LoginView.as_view(), name="auth-login"),
    re_path(r"^logout/?$", views.LogoutView.as_view(), name="auth-logout"),
    re_path(r"^me/?$", views.MeView.as_view(), name="auth-me"),
    re_path(r"^token/?$", views.TokenView.as_view(), name="auth-token"),
    re_path(r"^operator-token/?$", views.OperatorTokenView.as_view(), name="auth-operator-token"),
    re_path(r"^jwks\.json$", views.JwksView.as_view(), name="auth-jwks"),
]
