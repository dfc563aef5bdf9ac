"""Run the outbox relay: publish committed outbox rows to admin.events with confirms."""

from __future__ import annotations

import sys

from django.conf import settings
from django.core.management.base import BaseCommand
from eventbus.relay import BATCH_SIZE

from messaging import metrics, relay


class Command(BaseCommand):
    """`python manage.py relay_outbox`"""

    help = "Publish pending outbox rows to RabbitMQ (runs until SIGTERM/SIGINT)."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)

    def handle(self, *args, **options):
        metrics.serve(settings.RELAY_METRICS_PORT)
        code = relay.build(batch_size=options["batch_size"]).run()
        if code:
            sys.exit(code)
