"""An in-memory stand-in for eventbus.workbench.DeadLetters, with the same answers and exceptions."""

from __future__ import annotations

import json

from eventbus.workbench import BrokerUnavailable, NotFound, archived_headers

QUEUE = "admin.dlq"


def letter(
    message_id,
    fingerprint="0123456789abcdef",
    type_="product.liked",
    at="2026-12-06T16:40:00+00:00",
    body=None,
):
    """Return one dead letter in the workbench's detail shape."""
    body = json.dumps({"id": message_id, "type": type_}) if body is None else body
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    return {
        "message_id": message_id,
        "type": type_,
        "routing_key": type_,
        "fingerprint": fingerprint,
        "reason": "handler_error",
        "exception_type": "IntegrityError",
        "exception_message": "boom",
        "where": "messaging.handlers:apply",
        "attempts": 5,
        "first_failed_at": at,
        "last_failed_at": at,
        "host": "test-host",
        "source": "consumer",
        "queue": "admin",
        "retried": 0,
        "payload": payload,
        "body": body,
        "headers": {"x-failure-reason": "handler_error", "x-failure-fingerprint": fingerprint},
        "x_death": [],
    }


SUMMARY_KEYS = (
    "message_id type routing_key fingerprint reason exception_type exception_message where attempts "
    "first_failed_at last_failed_at host source queue retried"
).split()


class FakeDeadLetters:
    """Holds letters; `down = True` makes every call raise BrokerUnavailable as the real one does."""

    def __init__(self):
        self.letters: list[dict] = []
        self.retried: list[dict] = []
        self.down = False
        self.calls: list[tuple] = []
        self.acked_after_record: list[bool] = []

    def bind(self, params, topology):
        """Stand in for the constructor: check what the service passes, return self."""
        assert topology.dead_letter_queue == QUEUE
        self.params = params
        return self

    def _check(self, name, **kwargs):
        self.calls.append((name, kwargs))
        if self.down:
            raise BrokerUnavailable(
                f"the broker is unreachable (ConnectionRefused); the dead letters are safe in {QUEUE}"
            )

    @staticmethod
    def _select(message_id, fingerprint):
        if (message_id is None) == (fingerprint is None):
            raise ValueError("give exactly one of message_id or fingerprint")
        if message_id is not None:
            return lambda x: x["message_id"] == message_id
        return lambda x: x["fingerprint"] == fingerprint

    def depth(self):
        self._check("depth")
        return {"queue": QUEUE, "depth": len(self.letters)}

    def overview(self, fingerprint=None, limit=50, offset=0):
        self._check("overview", fingerprint=fingerprint, limit=limit, offset=offset)
        chosen = [x for x in self.letters if fingerprint is None or x["fingerprint"] == fingerprint]
        chosen.sort(key=lambda x: x["last_failed_at"], reverse=True)
        groups = {}
        for x in self.letters:
            group = groups.setdefault(
                x["fingerprint"],
                {
                    "fingerprint": x["fingerprint"],
                    "reason": x["reason"],
                    "exception_type": x["exception_type"],
                    "exception_message": x["exception_message"],
                    "where": x["where"],
                    "event_types": [],
                    "count": 0,
                    "first_seen": x["last_failed_at"],
                    "last_seen": x["last_failed_at"],
                },
            )
            group["count"] += 1
            if x["type"] not in group["event_types"]:
                group["event_types"].append(x["type"])
        times = [x["last_failed_at"] for x in self.letters]
        return {
            "queue": QUEUE,
            "depth": len(self.letters),
            "scanned": len(self.letters),
            "capped": False,
            "oldest_at": min(times) if times else None,
            "groups": list(groups.values()),
            "count": len(chosen),
            "results": [{k: x[k] for k in SUMMARY_KEYS} for x in chosen[offset : offset + limit]],
        }

    def show(self, message_id):
        self._check("show", message_id=message_id)
        for x in self.letters:
            if x["message_id"] == message_id:
                return {**x, "copies": 1}
        raise NotFound(f"no dead letter {message_id} in {QUEUE}")

    def retry(self, message_id=None, fingerprint=None, *, record=None):
        match = self._select(message_id, fingerprint)
        self._check("retry", message_id=message_id, fingerprint=fingerprint)
        depth = len(self.letters)
        chosen = [x for x in self.letters if match(x)]
        if not chosen:
            raise NotFound("no dead letter matches")
        for x in chosen:
            self.letters.remove(x)
            self.retried.append(x)
            if record is not None:
                record({k: x[k] for k in SUMMARY_KEYS})
        return {
            "matched": len(chosen),
            "retried": len(chosen),
            "depth": depth,
            "message_ids": [x["message_id"] for x in chosen],
        }

    def remove(self, message_id=None, fingerprint=None, *, record):
        match = self._select(message_id, fingerprint)
        self._check("remove", message_id=message_id, fingerprint=fingerprint)
        chosen = [x for x in self.letters if match(x)]
        if not chosen:
            raise NotFound("no dead letter matches")
        removed = []
        for x in chosen:
            record({**x, "archived_headers": archived_headers(x)})  # raises: the message stays
            self.letters.remove(x)
            removed.append(x)
        return removed
