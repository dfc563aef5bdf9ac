"""Messaging app: outbox, inbox, heartbeats, relay and consumer."""

from django.apps import AppConfig


class MessagingConfig(AppConfig):
    """Configure the messaging app."""

    name = "messaging"
    default_auto_field = "django.db.models.BigAutoField"
