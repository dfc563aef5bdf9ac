"""`flask dlq list|redrive|purge`: main's dead-letter queue (main.dlq), with eventbus.dlq."""

from __future__ import annotations

import click
from eventbus import dlq

from app.messaging import topology


def dlq_command(app, action: str, limit: int | None) -> int:
    """Run a dead-letter action on main.dlq; JSON lines (list) on stdout, the summary on stderr."""
    params = topology.connection_parameters(
        app.config["RABBITMQ_URL"], app.config.get("RABBITMQ_CA_FILE"), client_name="main-dlq"
    )
    try:
        return dlq.command(
            params,
            topology.TOPOLOGY,
            action,
            limit,
            out=click.echo,
            say=lambda line: click.echo(line, err=True),
        )
    except dlq.DeadLetterError as exc:
        raise click.ClickException(str(exc)) from exc
