"""Accounts app: session and token auth endpoints for the SPA and scripts."""

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Configure the accounts app."""

    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"
