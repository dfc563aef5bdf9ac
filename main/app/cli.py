"""Flask CLI commands of the main service (the messaging workers live in app.messaging)."""

import click
from flask import current_app


def register_cli(app):
    """Register the worker and maintenance commands on app."""

    @app.cli.command("consume")
    def consume():
        """Consume admin's product events from the `main` queue."""
        from app.messaging.consumer import run_consumer

        run_consumer(current_app._get_current_object())

    @app.cli.command("relay-outbox")
    def relay_outbox():
        """Publish pending outbox rows to RabbitMQ."""
        from app.messaging.relay import run_relay

        run_relay(current_app._get_current_object())

    @app.cli.command("resync-likes")
    @click.option(
        "--force",
        is_flag=True,
        help="admin takes main's counts whatever seq it holds (after main's database was restored from a backup)",
    )
    def resync_likes_command(force):
        """Publish product.likes_counted for every product so admin's counts catch up."""
        from app.messaging.resync import resync_likes

        count = resync_likes(current_app._get_current_object(), force)
        click.echo(f"enqueued {count} product.likes_counted events{' (forced)' if force else ''}")

    @app.cli.command("dlq")
    @click.argument("action", type=click.Choice(["list", "redrive", "purge"]))
    @click.option(
        "--limit",
        type=click.IntRange(min=1),
        default=None,
        help="Messages to handle at most (default: all there when the command starts).",
    )
    def dlq(action, limit):
        """List, redrive or purge dead-lettered messages of the `main.dlq` queue."""
        from app.messaging.dlq import dlq_command

        dlq_command(current_app._get_current_object(), action, limit)
