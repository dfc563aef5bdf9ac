"""Outbox relay: publish committed outbox rows to RabbitMQ with publisher confirms.

Loop: claim up to BATCH_SIZE pending rows in id order (FOR UPDATE SKIP LOCKED where the database
has it, so several relays never send the same row), publish them all, wait once for all their
confirms, mark the confirmed rows published and back off the nacked/returned ones, commit.
A crash between publish and commit re-sends the batch; consumers dedupe by message_id.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import logging
import select
import socket
import time
from collections.abc import Iterable

import pika
import pika.exceptions
from django.db import connection as db_connection
from django.db import transaction
from django.utils import timezone
from eventbus import connection as broker
from eventbus.connection import BrokerWait
from eventbus.runtime import Backoff, StopSignal
from pika import spec
from prometheus_client import Counter, Gauge, Histogram

from messaging import contract, runtime, topology
from messaging.contract import PRODUCER

logger = logging.getLogger(__name__)

HEARTBEAT_NAME = "admin-relay"
BATCH_SIZE = 500
POLL_SECONDS = 1.0
CONFIRM_TIMEOUT_SECONDS = 30.0
GAUGE_INTERVAL_SECONDS = 5.0
PRUNE_INTERVAL_SECONDS = 300.0
MAX_RETRY_DELAY_SECONDS = 60
TRACE_HEADERS = ("traceparent", "tracestate")

# The same metric names in both services: the dashboards and alert rules query them by name.
EVENTS_PUBLISHED = Counter("events_published", "Events confirmed by the broker and marked sent", ["type"])
for _type in contract.PUBLISHED:  # 0 from the start, not "No data"
    EVENTS_PUBLISHED.labels(type=_type)
OUTBOX_PENDING = Gauge("outbox_pending", "Outbox rows not yet published")
OUTBOX_OLDEST_AGE = Gauge("outbox_oldest_age_seconds", "Age of the oldest unpublished outbox row")
RELAY_CONFIRM_LATENCY = Histogram(
    "relay_confirm_latency_seconds",
    "Time from publishing a batch to the broker's last confirm for it",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


@dataclasses.dataclass(frozen=True)
class OutgoingMessage:
    """One outbox row ready to be published."""

    event_id: str
    event_type: str
    body: bytes
    properties: pika.BasicProperties


@dataclasses.dataclass
class PublishResult:
    """What the broker said about a batch: confirmed ids, failed ids with a reason, any error."""

    confirmed: set[str] = dataclasses.field(default_factory=set)
    failed: dict[str, str] = dataclasses.field(default_factory=dict)
    error: BaseException | None = None


class ConfirmTimeout(pika.exceptions.AMQPError):
    """The broker did not confirm a batch in time; the channel can no longer be trusted."""


def retry_delay(attempts: int) -> int:
    """Return the seconds to wait before retrying a row that has failed `attempts` times."""
    return min(MAX_RETRY_DELAY_SECONDS, 2 ** max(0, attempts - 1))


def trace_headers(raw: str | None) -> dict[str, str]:
    """Return the W3C trace context stored with an outbox row (bad or empty JSON -> none)."""
    if not raw:
        return {}
    try:
        stored = json.loads(raw)
    except ValueError:
        return {}
    if not isinstance(stored, dict):
        return {}
    return {k: stored[k] for k in TRACE_HEADERS if isinstance(stored.get(k), str) and stored[k]}


def to_message(row) -> OutgoingMessage:
    """Build the AMQP message of an outbox row (properties as in README: Event catalogue)."""
    properties = pika.BasicProperties(
        message_id=row.event_id,
        type=row.event_type,
        content_type="application/json",
        delivery_mode=2,
        app_id=PRODUCER,
        timestamp=int(row.created_at.timestamp()),
        headers=trace_headers(row.headers),
    )
    return OutgoingMessage(row.event_id, row.event_type, row.payload.encode("utf-8"), properties)


class ConfirmPublisher:
    """Publish batches on a BlockingConnection in confirm mode and wait once per batch.

    BlockingChannel.basic_publish waits for each confirm in turn, so this drives the asynchronous
    channel underneath it (channel._impl) for publishing and confirms, and pumps the connection
    with process_data_events until every delivery tag of the batch is acked or nacked.
    """

    def __init__(self, connection, channel, *, confirm_timeout: float = CONFIRM_TIMEOUT_SECONDS):
        self.connection = connection
        self._channel = channel._impl
        self._timeout = confirm_timeout
        # delivery tag -> event id, for the batch in flight
        self._pending: dict[int, str] = {}
        self._acked: set[str] = set()
        self._nacked: set[str] = set()
        self._returned: dict[str, str] = {}
        self._last_tag = 0
        selected: list = []
        self._channel.add_on_return_callback(self._on_return)
        self._channel.confirm_delivery(ack_nack_callback=self._on_confirm, callback=selected.append)
        deadline = time.monotonic() + self._timeout
        while not selected:
            if time.monotonic() > deadline:
                raise ConfirmTimeout("no Confirm.SelectOk from the broker")
            connection.process_data_events(time_limit=0.1)

    def _on_return(self, _channel, method, properties, _body) -> None:
        # RabbitMQ sends basic.return before the basic.ack of the same message.
        self._returned[properties.message_id] = f"returned {method.reply_code} {method.reply_text}"

    def _on_confirm(self, frame) -> None:
        method = frame.method
        tags = (
            [t for t in self._pending if t <= method.delivery_tag]
            if method.multiple
            else [method.delivery_tag]
        )
        target = self._acked if isinstance(method, spec.Basic.Ack) else self._nacked
        for tag in tags:
            event_id = self._pending.pop(tag, None)
            if event_id is not None:
                target.add(event_id)
        if not self._pending:
            # A ready timer ends process_data_events at once instead of after its time limit.
            self.connection.call_later(0, _noop)

    def publish_batch(self, messages: list[OutgoingMessage]) -> PublishResult:
        """Publish all messages, wait for all their confirms, and report per event id."""
        self._acked, self._nacked, self._returned = set(), set(), {}
        self._pending.clear()
        result = PublishResult()
        started = time.monotonic()
        try:
            for message in messages:
                self._channel.basic_publish(
                    exchange=topology.EVENTS_EXCHANGE,
                    routing_key=message.event_type,
                    body=message.body,
                    properties=message.properties,
                    mandatory=True,
                )
                self._last_tag += 1
                self._pending[self._last_tag] = message.event_id
            deadline = started + self._timeout
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ConfirmTimeout(f"{len(self._pending)} messages unconfirmed")
                self.connection.process_data_events(time_limit=remaining)
            RELAY_CONFIRM_LATENCY.observe(time.monotonic() - started)
        except pika.exceptions.AMQPError as exc:
            result.error = exc
        for message in messages:
            event_id = message.event_id
            if event_id in self._returned:
                result.failed[event_id] = self._returned[event_id]
            elif event_id in self._acked:
                result.confirmed.add(event_id)
            elif event_id in self._nacked:
                result.failed[event_id] = "nacked by broker"
            else:
                result.failed[event_id] = f"unconfirmed: {result.error!r}"
        self._pending.clear()
        return result

    def pump(self) -> None:
        """Service heartbeats and broker frames between batches (raises on a lost connection)."""
        self.connection.process_data_events(time_limit=0)

    def close(self) -> None:
        """Close the connection, ignoring errors of one that is already broken."""
        try:
            if self.connection.is_open:
                self.connection.close()
        except Exception:
            logger.debug("error while closing the broker connection", exc_info=True)


def _noop() -> None:
    return None


def connect(params: pika.ConnectionParameters | None = None) -> ConfirmPublisher:
    """Open a connection, declare admin's topology and return a publisher in confirm mode."""
    connection = pika.BlockingConnection(params or topology.connection_parameters(client_name="admin-relay"))
    try:
        channel = connection.channel()
        topology.declare_all(channel)
        return ConfirmPublisher(connection, channel)
    except BaseException:
        if connection.is_open:
            connection.close()
        raise


def claim_batch(limit: int = BATCH_SIZE) -> list:
    """Lock and return up to limit due, unpublished outbox rows in id order (call in a transaction)."""
    from messaging.models import OutboxEvent

    rows = OutboxEvent.objects.filter(published_at__isnull=True, available_at__lte=timezone.now()).order_by(
        "id"
    )
    if db_connection.features.has_select_for_update_skip_locked:
        # Rows another relay holds are skipped, so concurrent relays never send the same row.
        rows = rows.select_for_update(skip_locked=True)
    return list(rows[:limit])


def _record_outcome(model, rows, sent, result: PublishResult) -> None:
    now = timezone.now()
    if sent:
        model.objects.filter(id__in=[row.id for row in sent]).update(published_at=now)
    for row in rows:
        reason = result.failed.get(row.event_id)
        if reason is None:
            continue
        row.attempts += 1
        row.last_error = reason[:2000]
        row.available_at = now + dt.timedelta(seconds=retry_delay(row.attempts))
        row.save(update_fields=["attempts", "last_error", "available_at"])
        logger.warning(
            "publish failed (attempt %s), retrying in %ss: %s",
            row.attempts,
            retry_delay(row.attempts),
            reason,
            extra={"event_id": row.event_id, "event_type": row.event_type},
        )


def relay_batch(publisher, batch_size: int = BATCH_SIZE) -> int:
    """Publish one batch of pending rows and record the outcome; return how many rows were claimed.

    Raises the publisher's broker error (after committing what the broker did confirm) so the
    caller reconnects.
    """
    from messaging.models import OutboxEvent

    # With row locks (MySQL) the claim, publish and marks are one transaction so the locks hold
    # until the marks commit. SQLite has no row locks: holding its read transaction through the
    # confirm wait would only make the final write fail with "database is locked" when the web
    # process wrote meanwhile, so there the marks get their own short transaction.
    locking = db_connection.features.has_select_for_update
    with transaction.atomic() if locking else contextlib.nullcontext():
        rows = claim_batch(batch_size)
        if not rows:
            return 0
        result = publisher.publish_batch([to_message(row) for row in rows])
        sent = [row for row in rows if row.event_id in result.confirmed]
        # savepoint=False: inside the claim's transaction a savepoint would only add two round trips
        # (SAVEPOINT, RELEASE); if the marks fail, the whole batch rolls back and is sent again.
        with transaction.atomic(savepoint=False):
            _record_outcome(OutboxEvent, rows, sent, result)
    for row in sent:
        EVENTS_PUBLISHED.labels(type=row.event_type).inc()
    if sent:
        logger.info("published %s of %s outbox rows", len(sent), len(rows))
    if result.error is not None:
        raise result.error
    return len(rows)


def update_gauges() -> None:
    """Refresh outbox_pending and outbox_oldest_age_seconds."""
    from django.db.models import Count, Min

    from messaging.models import OutboxEvent

    stats = OutboxEvent.objects.filter(published_at__isnull=True).aggregate(
        pending=Count("id"), oldest=Min("created_at")
    )
    OUTBOX_PENDING.set(stats["pending"])
    oldest = stats["oldest"]
    age = (timezone.now() - oldest).total_seconds() if oldest else 0.0
    OUTBOX_OLDEST_AGE.set(max(0.0, age))


def prune(outbox_hours: float, inbox_hours: float) -> tuple[int, int]:
    """Delete sent outbox rows and inbox rows older than their retention; return the counts."""
    from messaging.models import InboxEvent, OutboxEvent

    now = timezone.now()
    sent, _ = OutboxEvent.objects.filter(published_at__lt=now - dt.timedelta(hours=outbox_hours)).delete()
    seen, _ = InboxEvent.objects.filter(received_at__lt=now - dt.timedelta(hours=inbox_hours)).delete()
    if sent or seen:
        logger.info("pruned %s sent outbox rows and %s inbox rows", sent, seen)
    return sent, seen


class WakeupListener:
    """UDP socket the web process pokes after committing outbox rows."""

    def __init__(self, addr: str | None):
        self.sock: socket.socket | None = None
        if not addr:
            return
        host, _, port = addr.rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
        try:
            family = socket.getaddrinfo(host, int(port), type=socket.SOCK_DGRAM)[0][0]
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if hasattr(socket, "SO_REUSEPORT"):
                # Several relays may run side by side; each still polls as the safety net.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, int(port)))
            sock.setblocking(False)
            self.sock = sock
            logger.info("listening for outbox wake-ups on udp %s", addr)
        except (OSError, ValueError) as exc:
            logger.warning("no UDP wake-up listener on %s (%s); polling only", addr, exc)

    def wait(self, timeout: float, also: Iterable = ()) -> bool:
        """Wait up to timeout for a datagram (or another readable fd); return True if woken."""
        fds = [fd for fd in (self.sock, *also) if fd is not None]
        if not fds:
            time.sleep(timeout)
            return False
        readable, _, _ = select.select(fds, [], [], timeout)
        self.drain()
        return bool(readable)

    def drain(self) -> None:
        """Discard queued datagrams: one batch run covers all of them."""
        if self.sock is None:
            return
        while True:
            try:
                self.sock.recv(512)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return

    def close(self) -> None:
        """Close the socket."""
        if self.sock is not None:
            self.sock.close()


class Relay:
    """The long-running relay process: reconnects, wakes on UDP, polls, keeps house."""

    def __init__(
        self,
        *,
        params: pika.ConnectionParameters | None = None,
        batch_size: int = BATCH_SIZE,
        wakeup_addr: str | None = None,
        outbox_retention_hours: float = 24,
        inbox_retention_hours: float = 168,
        stop: StopSignal | None = None,
    ):
        self.params = params or topology.connection_parameters(client_name="admin-relay")
        self.broker_wait = BrokerWait(self.params)
        self.batch_size = batch_size
        self.wakeup_addr = wakeup_addr
        self.outbox_retention_hours = outbox_retention_hours
        self.inbox_retention_hours = inbox_retention_hours
        self.stop = stop or StopSignal()
        self.publisher: ConfirmPublisher | None = None
        self._broker_backoff = Backoff(0.5, 5.0)
        self._db_backoff = Backoff(0.5, 5.0)
        self._next_beat = 0.0
        self._next_gauges = 0.0
        self._next_prune = 0.0

    def run(self) -> int:
        """Relay until stopped; return the process exit code (0 on a requested stop)."""
        self.stop.install()
        wakeup = WakeupListener(self.wakeup_addr)
        try:
            while not self.stop.requested:
                self._step(wakeup)
            logger.info("relay stopped")
            return 0
        except Exception:
            logger.exception("relay failed with an unrecoverable error")
            return 1
        finally:
            self._disconnect()
            wakeup.close()
            self.stop.restore()

    def _step(self, wakeup: WakeupListener) -> None:
        if self.publisher is None:
            try:
                with self.broker_wait.attempt():
                    self.publisher = connect(self.params)
                self.broker_wait.succeeded()
                self._broker_backoff.reset()
                logger.info("relay connected to the broker")
            except pika.exceptions.AMQPError as exc:
                if broker.is_fatal(exc):
                    raise
                delay = self._broker_backoff.next()
                if not self.broker_wait.failed(exc):
                    logger.warning("broker unavailable (%r); retrying in %.1fs", exc, delay)
                self._housekeeping()
                wakeup.wait(delay, also=[self.stop])
                return
        try:
            claimed = relay_batch(self.publisher, self.batch_size)
            self._db_backoff.reset()
        except pika.exceptions.AMQPError as exc:
            if broker.is_fatal(exc):
                raise
            logger.warning("lost the broker while publishing (%r); reconnecting", exc)
            self._disconnect()
            return
        except runtime.TRANSIENT_DB_ERRORS as exc:
            delay = self._db_backoff.next()
            logger.warning("database error (%r); retrying in %.1fs", exc, delay)
            runtime.reset_db_connection()
            wakeup.wait(delay, also=[self.stop])
            return
        self._housekeeping()
        if claimed < self.batch_size and not self.stop.requested:
            wakeup.wait(POLL_SECONDS, also=[self.stop])
            try:
                self.publisher.pump()
            except pika.exceptions.AMQPError as exc:
                logger.warning("lost the broker while idle (%r); reconnecting", exc)
                self._disconnect()

    def _housekeeping(self) -> None:
        now = time.monotonic()
        try:
            if now >= self._next_beat:
                runtime.beat(HEARTBEAT_NAME)
                self._next_beat = now + runtime.HEARTBEAT_INTERVAL_SECONDS
            if now >= self._next_gauges:
                update_gauges()
                self._next_gauges = now + GAUGE_INTERVAL_SECONDS
            if now >= self._next_prune:
                prune(self.outbox_retention_hours, self.inbox_retention_hours)
                self._next_prune = now + PRUNE_INTERVAL_SECONDS
        except runtime.TRANSIENT_DB_ERRORS as exc:
            # Housekeeping is best effort; the publishing path handles a lasting outage.
            logger.warning("housekeeping skipped: database error %r", exc)
            runtime.reset_db_connection()

    def _disconnect(self) -> None:
        if self.publisher is not None:
            self.publisher.close()
            self.publisher = None
