"""main's side of the broker (README: Topology) and its connection parameters, from eventbus."""

from __future__ import annotations

from eventbus import connection
from eventbus.topology import Topology

TOPOLOGY = Topology(service="main", source_exchange="admin.events", binding_keys=("product.#", "catalogue.#"))
EVENTS_EXCHANGE = TOPOLOGY.events_exchange
SOURCE_EXCHANGE = TOPOLOGY.source_exchange
QUEUE = TOPOLOGY.queue
DEAD_LETTER_EXCHANGE = TOPOLOGY.dead_letter_exchange
DEAD_LETTER_QUEUE = TOPOLOGY.dead_letter_queue
REDRIVE_EXCHANGE = TOPOLOGY.redrive_exchange
BINDING_KEYS = TOPOLOGY.binding_keys
DELIVERY_LIMIT = TOPOLOGY.delivery_limit
QUEUE_ARGUMENTS = TOPOLOGY.queue_arguments
DEAD_LETTER_QUEUE_ARGUMENTS = TOPOLOGY.dead_letter_queue_arguments

declare_publisher = TOPOLOGY.declare_publisher
declare_consumer = TOPOLOGY.declare_consumer
declare_all = TOPOLOGY.declare_all


def connection_parameters(url: str, ca_file: str | None = None, *, client_name: str | None = None):
    """Build pika parameters from RABBITMQ_URL and RABBITMQ_CA_FILE (eventbus.connection.parameters)."""
    return connection.parameters(url, ca_file, client_name=client_name)
