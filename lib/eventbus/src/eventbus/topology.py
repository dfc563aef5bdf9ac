"""The exchanges and queues of one service (README: Topology); every declaration is idempotent."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topology:
    """One service's side of the broker: the exchange it publishes to, and the queue it consumes.

    `<service>.events` (topic) carries what the service publishes, routed by event type. Its queue
    `<service>` (quorum) is bound to the other service's exchange; what it rejects goes through
    `<service>.dlx` (fanout) to `<service>.dlq`, and `dlq redrive` republishes through
    `<service>.redrive` (fanout, bound to that one queue), so no user needs write access to the
    default exchange, which reaches every queue on the broker.
    """

    service: str
    source_exchange: str
    binding_keys: tuple[str, ...]
    delivery_limit: int = 5
    # Listing dead letters gives each one back to its queue, and RabbitMQ 4.0-4.2 count that as a
    # delivery: the 4.x default limit (20) would drop a dead letter on its 20th listing. This one
    # is never reached, and it is explicit on every version.
    dead_letter_delivery_limit: int = 1_000_000

    @property
    def events_exchange(self) -> str:
        """Return the exchange this service publishes to."""
        return f"{self.service}.events"

    @property
    def queue(self) -> str:
        """Return the queue this service consumes."""
        return self.service

    @property
    def dead_letter_exchange(self) -> str:
        """Return the exchange the queue dead-letters to."""
        return f"{self.service}.dlx"

    @property
    def dead_letter_queue(self) -> str:
        """Return the queue that keeps the dead letters."""
        return f"{self.service}.dlq"

    @property
    def redrive_exchange(self) -> str:
        """Return the exchange `dlq redrive` republishes to (bound to the queue alone)."""
        return f"{self.service}.redrive"

    @property
    def queue_arguments(self) -> dict:
        """Return the queue's arguments (a queue declared with others is refused with 406)."""
        return {
            "x-queue-type": "quorum",
            "x-dead-letter-exchange": self.dead_letter_exchange,
            "x-delivery-limit": self.delivery_limit,
            # At-least-once dead-lettering: the queue keeps a rejected message until the dead-letter
            # queue has confirmed it (the default, at-most-once, loses it when that queue is down).
            # RabbitMQ requires reject-publish overflow for it: a full queue refuses new publishes
            # (the relay's confirm is then a nack and the outbox row is retried) rather than
            # dropping its oldest messages.
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        }

    @property
    def dead_letter_queue_arguments(self) -> dict:
        """Return the dead-letter queue's arguments."""
        return {"x-queue-type": "quorum", "x-delivery-limit": self.dead_letter_delivery_limit}

    def declare_publisher(self, channel) -> None:
        """Declare the exchange this service publishes to."""
        channel.exchange_declare(exchange=self.events_exchange, exchange_type="topic", durable=True)

    def declare_consumer(self, channel) -> None:
        """Declare the queue, its dead-letter and redrive exchanges, the dead-letter queue and the bindings.

        The other service's exchange is only looked up (a passive declare), never declared: that
        would need `configure` permission on it, which also allows deleting it. Until the other
        service's relay has declared it once, this fails with 404 NOT_FOUND and the consumer
        retries (README: Topology).
        """
        channel.exchange_declare(exchange=self.source_exchange, passive=True)
        channel.exchange_declare(exchange=self.dead_letter_exchange, exchange_type="fanout", durable=True)
        channel.queue_declare(
            queue=self.dead_letter_queue, durable=True, arguments=self.dead_letter_queue_arguments
        )
        channel.queue_bind(queue=self.dead_letter_queue, exchange=self.dead_letter_exchange)
        channel.queue_declare(queue=self.queue, durable=True, arguments=self.queue_arguments)
        for key in self.binding_keys:
            channel.queue_bind(queue=self.queue, exchange=self.source_exchange, routing_key=key)
        channel.exchange_declare(exchange=self.redrive_exchange, exchange_type="fanout", durable=True)
        channel.queue_bind(queue=self.queue, exchange=self.redrive_exchange)

    def declare_all(self, channel) -> None:
        """Declare everything the service touches, as publisher and as consumer."""
        self.declare_publisher(channel)
        self.declare_consumer(channel)
