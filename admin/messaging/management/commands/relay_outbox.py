"""Run the outbox relay: publish committed outbox rows to admin.events with confirms."""

from __future__ import annotations

import sys

from django.conf import settings
from django.core.management.base import BaseCommand

from messaging import metrics
from messaging.relay import BATCH_SIZE, Relay


class Command(BaseCommand):
    """`python manage.py relay_outbox`"""

    help = "Publish pending outbox rows to RabbitMQ (runs until SIGTERM/SIGINT)."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)

    def handle(self, *args, **options):
        metrics.serve(settings.RELAY_METRICS_PORT)
        relay = Relay(
            batch_size=options["batch_size"],
            wakeup_addr=settings.OUTBOX_WAKEUP_ADDR,
            outbox_retention_hours=settings.OUTBOX_RETENTION_HOURS,
            inbox_retention_hours=settings.INBOX_RETENTION_HOURS,
        )
        code = relay.run()
        if code:
            sys.exit(code)
