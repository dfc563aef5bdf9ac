"""main's side of the broker (README: Topology) and its connection parameters, from eventbus."""

from __future__ import annotations

from eventbus import connection
from eventbus.topology import Topology

TOPOLOGY = Topology(service="main", source_exchange="admin.events", binding_keys=("product.#", "catalogue.#"))


def connection_parameters(url: str, ca_file: str | None = None, *, client_name: str | None = None):
    """Build pika parameters from RABBITMQ_URL (one or more addresses) and RABBITMQ_CA_FILE (eventbus)."""
    return connection.parameters(url, ca_file, client_name=client_name)
