"""Messaging of the main service: outbox (web side), relay, consumer and the event contract."""
