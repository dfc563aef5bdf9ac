"""Fakes and builders for the messaging tests."""

import json
import uuid
from types import SimpleNamespace

import pytest


def admin_event(event_type, data, *, event_id=None, occurred_at="2026-11-22T03:00:00.123456Z"):
    """Return an envelope as admin would publish it."""
    return {
        "id": event_id or str(uuid.uuid4()),
        "type": event_type,
        "version": 1,
        "occurred_at": occurred_at,
        "producer": "admin",
        "data": data,
    }


class FakeChannel:
    """Records acks and rejects in order; can be told what happened in between (the log)."""

    def __init__(self, log=None):
        self.log = log if log is not None else []
        self.acked = []
        self.rejected = []
        self._tag = 0

    def basic_ack(self, delivery_tag, multiple=False):
        self.acked.append((delivery_tag, multiple) if multiple else delivery_tag)
        self.log.append(("ack", delivery_tag))

    def basic_reject(self, delivery_tag, requeue=True):
        self.rejected.append((delivery_tag, requeue))
        self.log.append(("reject", delivery_tag, requeue))

    def delivery(
        self,
        envelope=None,
        *,
        body=None,
        message_id="same",
        amqp_type="same",
        headers=None,
    ):
        """Return (method, properties, body) of a new delivery of envelope (or raw body)."""
        self._tag += 1
        if body is None:
            body = json.dumps(envelope).encode()
        if message_id == "same":
            message_id = envelope["id"] if envelope else None
        if amqp_type == "same":
            amqp_type = envelope["type"] if envelope else None
        method = SimpleNamespace(delivery_tag=self._tag, routing_key=amqp_type or "", redelivered=False)
        properties = SimpleNamespace(message_id=message_id, type=amqp_type, headers=headers or {})
        return method, properties, body


@pytest.fixture
def channel():
    """Return a fake AMQP channel."""
    return FakeChannel()
