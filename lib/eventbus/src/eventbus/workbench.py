"""The dead-letter workbench: see, group, retry and remove a service's dead letters (README: Dead letters).

Each service's web process serves its own queue's workbench (it owns the queue). Every operation
opens one short connection (an operator's click, not a hot path), reads the dead-letter queue
without acknowledging, acts on the messages it was asked about, and closes: whatever it did not
act on goes back to the queue, at its head (quorum queues deliver returned messages first).

Every operation is bounded by the queue's depth when it starts, so a retried message that is still
poison and comes straight back is not retried again by the same click. A scan reads at most
`scan_limit` messages; the answer says when it was capped.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal

import pika
import pika.connection
import pika.exceptions

from eventbus import failures
from eventbus.connection import Brokers, explain
from eventbus.dlq import original_routing_key, redrive_properties
from eventbus.topology import Topology

logger = logging.getLogger(__name__)

SCAN_LIMIT = 5000
BODY_LIMIT = 64 * 1024
# What an archive keeps of a body: well within MEDIUMTEXT (16 MiB) even when every byte is replaced.
ARCHIVE_BODY_LIMIT = 4 * 1024 * 1024
TIMEOUT_SECONDS = 3.0
# How long a scan waits for a message it expects (another operator's scan may be holding some).
QUIET_SECONDS = 0.5
# How long a scan waits for another one (which holds the letters it read) to finish.
SCAN_WAIT_SECONDS = 2.0


class BrokerUnavailable(Exception):
    """The broker could not be reached or refused the operation; the web answers 503."""


class NotFound(Exception):
    """No dead letter matches the selector."""


def _jsonable(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


@dataclass
class Letter:
    """One dead letter as read from the queue (unacknowledged until acted on)."""

    method: object
    properties: pika.BasicProperties
    body: bytes
    failure: failures.Failure

    @property
    def message_id(self) -> str | None:
        """Return the AMQP message_id (the event id)."""
        return self.properties.message_id

    def summary(self) -> dict:
        """Return what the list shows of this letter."""
        headers = self.properties.headers or {}
        return {
            "message_id": self.properties.message_id,
            "type": self.properties.type,
            "routing_key": original_routing_key(self.method, self.properties),
            **self.failure.as_dict(),
            "queue": self.failure.queue,
            "retried": failures.count_of(headers.get("x-redriven")),
        }

    def detail(self) -> dict:
        """Return everything: the summary, the payload, the headers and the broker's x-death."""
        headers = dict(self.properties.headers or {})
        deaths = headers.pop("x-death", None) or []
        # The dead-letter queue's own redelivery count: it grows with every scan (each gives the
        # letters back), so it says nothing of the failure; x-failure-attempts does.
        headers.pop("x-delivery-count", None)
        text = self.body[:BODY_LIMIT].decode("utf-8", "replace")
        try:
            payload = json.loads(self.body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            payload = None
        return {
            **self.summary(),
            "payload": payload,
            "body": text,
            "body_truncated": len(self.body) > BODY_LIMIT,
            "content_type": self.properties.content_type,
            "headers": _jsonable(headers),
            "x_death": _jsonable(deaths),
        }


def archived_headers(detail: dict) -> dict:
    """Return what an archive keeps of a letter's headers: all of them, the broker's x-death among them."""
    headers = dict(detail.get("headers") or {})
    if detail.get("x_death"):
        headers["x-death"] = detail["x_death"]
    return headers


def _selector(message_id: str | None, fingerprint: str | None) -> Callable[[Letter], bool]:
    if (message_id is None) == (fingerprint is None):
        raise ValueError("give exactly one of message_id or fingerprint")
    if message_id is not None:
        return lambda letter: letter.message_id == message_id
    return lambda letter: letter.failure.fingerprint == fingerprint


def _group(letters: list[Letter]) -> list[dict]:
    groups: dict[str, dict] = {}
    for letter in letters:
        f = letter.failure
        group = groups.get(f.fingerprint)
        if group is None:
            group = groups[f.fingerprint] = {
                "fingerprint": f.fingerprint,
                "reason": f.reason,
                "exception_type": f.exception_type,
                "exception_message": f.exception_message,
                "where": f.where,
                "source": f.source,
                "event_types": [],
                "count": 0,
                "first_seen": f.last_at,
                "last_seen": f.last_at,
            }
        group["count"] += 1
        if letter.properties.type and letter.properties.type not in group["event_types"]:
            group["event_types"].append(letter.properties.type)
        if f.last_at:
            group["first_seen"] = min(filter(None, (group["first_seen"], f.last_at)))
            group["last_seen"] = max(filter(None, (group["last_seen"], f.last_at)))
    # Biggest groups first; among equals, the most recent failure first.
    return sorted(groups.values(), key=lambda g: (g["count"], g["last_seen"] or ""), reverse=True)


class DeadLetters:
    """A service's dead-letter queue as the workbench sees it."""

    def __init__(
        self,
        params: pika.connection.Parameters | Sequence[pika.connection.Parameters],
        topology: Topology,
        *,
        timeout: float = TIMEOUT_SECONDS,
        scan_limit: int = SCAN_LIMIT,
    ):
        self.topology, self.scan_limit = topology, scan_limit
        self.params = [self._quick(p, timeout) for p in Brokers.of(params)]

    @staticmethod
    def _quick(params: pika.connection.Parameters, timeout: float) -> pika.connection.Parameters:
        # An operator waits for the answer: one attempt per address, short timeouts.
        quick = copy.copy(params)
        quick.connection_attempts, quick.retry_delay = 1, 0
        quick.socket_timeout = quick.stack_timeout = timeout
        quick.blocked_connection_timeout = timeout
        return quick

    @property
    def queue(self) -> str:
        """Return the dead-letter queue's name."""
        return self.topology.dead_letter_queue

    # -- the broker -------------------------------------------------------------------------
    @contextmanager
    def _connection(self) -> Iterator[pika.BlockingConnection]:
        try:
            connection = pika.BlockingConnection(Brokers.of(self.params).order())
        except (pika.exceptions.AMQPError, OSError) as exc:
            raise BrokerUnavailable(
                f"the broker is unreachable ({explain(exc)}); the dead letters are safe in "
                f"{self.queue}: try again when RabbitMQ is back"
            ) from exc
        try:
            yield connection
        except (pika.exceptions.AMQPError, OSError) as exc:
            raise BrokerUnavailable(
                f"the broker ended the operation ({explain(exc)}); messages not yet acted on are back in "
                f"{self.queue}: look again and retry"
            ) from exc
        finally:
            try:
                if connection.is_open:
                    connection.close()  # every unacknowledged message goes back to the queue
            except Exception:  # noqa: BLE001 - it is going away either way
                logger.debug("error while closing the broker connection", exc_info=True)

    def _declared(self, channel):
        try:
            return channel.queue_declare(queue=self.queue, passive=True).method
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code == 404:  # declared by the consumer when it first starts: none yet
                return None
            raise

    def _depth(self, channel) -> int:
        declared = self._declared(channel)
        return -1 if declared is None else declared.message_count

    def _settled_depth(self, connection: pika.BlockingConnection, channel) -> int:
        """Return the depth once no other scan holds letters (a dead-letter queue has no consumer but us).

        Another scan (the same page's other list, another operator) holds the letters it read until
        it closes, and they are not counted as ready meanwhile: wait for it, up to SCAN_WAIT_SECONDS.
        """
        deadline = time.monotonic() + SCAN_WAIT_SECONDS
        declared = self._declared(channel)
        while declared is not None and declared.consumer_count and time.monotonic() < deadline:
            connection.sleep(0.02)
            declared = self._declared(channel)
        return -1 if declared is None else declared.message_count

    def _scan(self, connection: pika.BlockingConnection) -> tuple[object, int, list[Letter]]:
        """Return (the channel holding the letters unacknowledged, the depth at the start, the letters)."""
        channel = connection.channel()
        depth = self._settled_depth(connection, channel)
        if depth < 0:
            return channel, 0, []
        wanted = min(depth, self.scan_limit)
        letters: list[Letter] = []
        if wanted:
            channel.basic_qos(prefetch_count=wanted)
            for method, properties, body in channel.consume(
                self.queue, auto_ack=False, inactivity_timeout=QUIET_SECONDS
            ):
                if method is None:
                    break
                limit = self.topology.delivery_limit
                letters.append(
                    Letter(method, properties, body, failures.read(properties.headers, delivery_limit=limit))
                )
                if len(letters) >= wanted:
                    break
        return channel, depth, letters

    # -- the operations -----------------------------------------------------------------------
    def depth(self) -> dict:
        """Return the dead-letter queue's depth (cheap: no message is read)."""
        with self._connection() as connection:
            return {"queue": self.queue, "depth": max(0, self._depth(connection.channel()))}

    def overview(self, fingerprint: str | None = None, limit: int = 50, offset: int = 0) -> dict:
        """Return the groups, and one page of the messages (of one group when fingerprint is given)."""
        with self._connection() as connection:
            _, depth, letters = self._scan(connection)
        chosen = [x for x in letters if fingerprint is None or x.failure.fingerprint == fingerprint]
        chosen.sort(key=lambda x: x.failure.last_at or "", reverse=True)
        times = [x.failure.last_at for x in letters if x.failure.last_at]
        return {
            "queue": self.queue,
            "depth": depth,
            "scanned": len(letters),
            "capped": depth > len(letters),
            "oldest_at": min(times) if times else None,
            "groups": _group(letters),
            "count": len(chosen),
            "results": [x.summary() for x in chosen[offset : offset + limit]],
        }

    def show(self, message_id: str) -> dict:
        """Return one dead letter in full (the first copy, with how many copies there are)."""
        with self._connection() as connection:
            _, _, letters = self._scan(connection)
        copies = [x for x in letters if x.message_id == message_id]
        if not copies:
            raise NotFound(f"no dead letter {message_id} in {self.queue}")
        return {**copies[0].detail(), "copies": len(copies)}

    def retry(
        self,
        message_id: str | None = None,
        fingerprint: str | None = None,
        *,
        record: Callable[[dict], None] | None = None,
    ) -> dict:
        """Republish the matching dead letters to the service's queue, each acked after its confirm.

        record(summary), when given, is called for each letter once it is retried (the audit row).
        """
        match = _selector(message_id, fingerprint)
        retried: list[str] = []
        with self._connection() as connection:
            holder, depth, letters = self._scan(connection)
            chosen = [x for x in letters if match(x)]
            if not chosen:
                raise NotFound(self._none(message_id, fingerprint))
            publisher = connection.channel()
            publisher.confirm_delivery()
            for letter in chosen:
                key = original_routing_key(letter.method, letter.properties)
                try:
                    publisher.basic_publish(
                        self.topology.redrive_exchange,
                        key,
                        letter.body,
                        redrive_properties(letter.properties),
                        mandatory=True,
                    )
                except (pika.exceptions.UnroutableError, pika.exceptions.NackError) as exc:
                    raise BrokerUnavailable(
                        f"the broker did not accept the retry of {letter.message_id} ({exc!r}); "
                        f"{len(retried)} retried, the rest stay in {self.queue}"
                    ) from exc
                holder.basic_ack(letter.method.delivery_tag)
                retried.append(letter.message_id)
                if record is not None:
                    record(letter.summary())
                logger.info(
                    "retried a dead letter",
                    extra={"event_id": letter.message_id, "event_type": letter.properties.type},
                )
        return {"matched": len(chosen), "retried": len(retried), "depth": depth, "message_ids": retried}

    def remove(
        self,
        message_id: str | None = None,
        fingerprint: str | None = None,
        *,
        record: Callable[[dict], None],
    ) -> list[dict]:
        """Drop the matching dead letters, each only after record(detail) has kept its audit (and copy).

        The record's detail has the body whole (up to ARCHIVE_BODY_LIMIT) and `archived_headers`:
        the headers with the broker's x-death among them.
        """
        match = _selector(message_id, fingerprint)
        removed: list[dict] = []
        with self._connection() as connection:
            holder, _, letters = self._scan(connection)
            chosen = [x for x in letters if match(x)]
            if not chosen:
                raise NotFound(self._none(message_id, fingerprint))
            for letter in chosen:
                detail = letter.detail()
                # The record (an archive) keeps the body whole, up to a bound every audit column holds.
                kept = letter.body[:ARCHIVE_BODY_LIMIT]
                record(
                    {
                        **detail,
                        "body": kept.decode("utf-8", "replace"),
                        "body_truncated": kept != letter.body,
                        "archived_headers": archived_headers(detail),
                    }
                )
                # Committed: only now may the broker forget the message.
                holder.basic_ack(letter.method.delivery_tag)
                removed.append(detail)
                logger.info(
                    "removed a dead letter",
                    extra={"event_id": letter.message_id, "event_type": letter.properties.type},
                )
        return removed

    def _none(self, message_id, fingerprint) -> str:
        what = f"message {message_id}" if message_id is not None else f"group {fingerprint}"
        return f"no dead letter matches {what} in {self.queue} (already retried or removed?)"


def peek(channel, topology: Topology) -> tuple[int, float]:
    """Return (depth, age in seconds of the head message's failure) of the dead-letter queue; (0, 0.0) when empty.

    Reads the head without acknowledging it and gives it straight back (quorum queues deliver a
    returned message first, so the head stays the head).
    """
    depth = channel.queue_declare(queue=topology.dead_letter_queue, passive=True).method.message_count
    if not depth:
        return 0, 0.0
    method, properties, _ = channel.basic_get(topology.dead_letter_queue, auto_ack=False)
    if method is None:
        return depth, 0.0
    channel.basic_nack(method.delivery_tag, requeue=True)
    failure = failures.read(properties.headers)
    when = failure.last_at or failure.first_at
    try:
        at = dt.datetime.fromisoformat(when) if when else None
    except ValueError:
        at = None
    if at is None:
        return depth, 0.0
    at = at if at.tzinfo else at.replace(tzinfo=dt.UTC)
    return depth, max(0.0, (dt.datetime.now(dt.UTC) - at).total_seconds())
