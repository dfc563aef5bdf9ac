"""Transactional outbox, inbox and the RabbitMQ relay/consumer of the admin service."""
