"""Run the consumer of main's events (queue `admin`)."""

from __future__ import annotations

import sys

from django.conf import settings
from django.core.management.base import BaseCommand

from messaging import consumer, metrics


class Command(BaseCommand):
    """`python manage.py consume`"""

    help = "Consume main's events from the admin queue (runs until SIGTERM/SIGINT)."

    def handle(self, *args, **options):
        from config.tracing import configure_tracing

        configure_tracing("admin")
        metrics.serve(settings.CONSUMER_METRICS_PORT)
        code = consumer.build().run()
        if code:
            sys.exit(code)
