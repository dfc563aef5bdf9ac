"""Test doubles for pika channels and deliveries."""

from __future__ import annotations

import json
import uuid
from types import SimpleNamespace

import pika
from django.db import transaction


class FakeChannel:
    """Records acks and rejects, and what the database looked like at an ack."""

    def __init__(self):
        self.calls: list[tuple] = []

    def _snapshot(self) -> dict:
        from messaging.models import InboxEvent

        return {
            "in_transaction": transaction.get_connection().in_atomic_block,
            "inbox": set(InboxEvent.objects.values_list("message_id", flat=True)),
        }

    def basic_ack(self, delivery_tag, multiple=False):
        self.calls.append(("ack", delivery_tag, multiple, self._snapshot()))

    def basic_reject(self, delivery_tag, requeue=True):
        self.calls.append(("reject", delivery_tag, requeue))

    @property
    def verbs(self) -> list[tuple]:
        """Every settlement; an ack as ("ack", tag, multiple), so a lost multiple=True shows."""
        return [c[:3] if c[0] == "ack" else c for c in self.calls]


def likes_envelope(product_id=1, likes=1, seq=1, event_type="product.liked", **overrides) -> dict:
    doc = {
        "id": str(uuid.uuid4()),
        "type": event_type,
        "version": 1,
        "occurred_at": "2026-11-22T03:00:00.000000Z",
        "producer": "main",
        "data": {"product_id": product_id, "likes": likes, "seq": seq},
    }
    doc.update(overrides)
    return doc


def delivery(
    doc: dict | bytes,
    tag=1,
    *,
    message_id="from-doc",
    amqp_type="from-doc",
    headers=None,
):
    """Return (method, properties, body) as pika hands them to a consumer callback."""
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    if message_id == "from-doc":
        message_id = doc["id"] if isinstance(doc, dict) else None
    if amqp_type == "from-doc":
        amqp_type = doc["type"] if isinstance(doc, dict) else None
    method = SimpleNamespace(delivery_tag=tag, routing_key=amqp_type or "", redelivered=False)
    properties = pika.BasicProperties(
        message_id=message_id,
        type=amqp_type,
        content_type="application/json",
        delivery_mode=2,
        headers=headers or {},
    )
    return method, properties, body
