"""admin's side of the broker (README: Topology) and its connection parameters, from eventbus."""

from __future__ import annotations

import os

import pika
from eventbus import connection
from eventbus.topology import Topology

TOPOLOGY = Topology(service="admin", source_exchange="main.events", binding_keys=("product.#",))
DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


def setting(name: str, default=None):
    """Return a Django setting when settings are configured, else the environment variable."""
    from django.conf import settings

    if settings.configured and hasattr(settings, name):
        value = getattr(settings, name)
        if value not in (None, ""):
            return value
    value = os.environ.get(name, "")
    return value if value.strip() else default


def connection_parameters(
    url: str | None = None,
    ca_file: str | None = None,
    *,
    client_name: str | None = None,
) -> pika.URLParameters | connection.Brokers:
    """Build pika parameters from RABBITMQ_URL (one or more addresses) and RABBITMQ_CA_FILE (eventbus)."""
    return connection.parameters(
        url or setting("RABBITMQ_URL", DEFAULT_URL),
        ca_file or setting("RABBITMQ_CA_FILE"),
        client_name=client_name,
    )
