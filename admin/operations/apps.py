"""Operations app configuration."""

from django.apps import AppConfig


class OperationsConfig(AppConfig):
    """Configure the operations app."""

    name = "operations"
    default_auto_field = "django.db.models.BigAutoField"
