"""Products app: the catalogue admin owns."""

import logging

from django.apps import AppConfig

logger = logging.getLogger(__name__)


class ProductsConfig(AppConfig):
    """Configure the products app."""

    name = "products"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        """Start tracing and say where the database credentials came from."""
        from django.conf import settings

        from config.tracing import configure_tracing

        configure_tracing("admin")
        logger.info("database credentials source: %s", settings.DATABASE_SOURCE)
