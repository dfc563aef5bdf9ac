"""List, redrive or purge admin's dead-letter queue (admin.dlq), with eventbus.dlq."""

from __future__ import annotations

import pika.exceptions
from django.core.management.base import BaseCommand, CommandError
from eventbus import dlq

from messaging import topology


class Command(BaseCommand):
    """`python manage.py dlq list|redrive|purge [--limit N]`"""

    help = (
        "List (non-destructively), redrive to the admin queue, or purge admin.dlq; "
        "at most the messages there when it starts (and at most --limit)."
    )

    def add_arguments(self, parser):
        parser.add_argument("action", choices=dlq.ACTIONS)
        parser.add_argument("--limit", type=int, default=None, help="at most N messages")

    def handle(self, *args, **options):
        limit = options["limit"]
        if limit is not None and limit < 1:
            raise CommandError("--limit must be >= 1")
        try:
            dlq.command(
                topology.connection_parameters(client_name="admin-dlq"),
                topology.TOPOLOGY,
                options["action"],
                limit,
                out=self.stdout.write,
                say=self.stderr.write,
            )
        except dlq.DeadLetterError as exc:
            raise CommandError(str(exc)) from exc
        except pika.exceptions.AMQPError as exc:
            raise CommandError(f"cannot reach the broker: {exc!r}") from exc
