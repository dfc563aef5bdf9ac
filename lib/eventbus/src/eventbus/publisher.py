"""Publish outbox rows with publisher confirms on one long-lived connection, a batch at a time.

pika's BlockingChannel waits for each confirm inside basic_publish; this publisher drives pika's
asynchronous SelectConnection instead (public API only): it writes a whole batch, then runs the
I/O loop until every confirm of the batch has arrived, and maps acks, nacks and returns back to
event ids. The I/O loop also watches the relay's UDP wake-up socket, so a datagram from the web
process ends an idle wait at once.
"""

from __future__ import annotations

import calendar
import contextlib
import datetime as dt
import json
import logging
import socket
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pika
import pika.connection
import pika.exceptions
from pika.adapters.select_connection import IOLoop, PollEvents
from pika.adapters.utils import connection_workflow
from pika.spec import Basic

from eventbus import connection as broker
from eventbus.topology import Topology

logger = logging.getLogger(__name__)

CONFIRM_TIMEOUT_SECONDS = 30.0
# No confirm at all for this long, with confirms pending and the connection not blocked: the batch
# is given up and the relay reconnects. A quorum queue whose leader just died can leave a channel
# sending to the dead leader until the broker's own 10 s resend timer (RabbitMQ 3.10); a new
# channel asks for the current leader at once.
CONFIRM_STALL_SECONDS = 5.0
# A batch whose confirms take longer than this gets a WARNING line (once), to tell a slow broker.
SLOW_CONFIRM_SECONDS = 1.0
CONNECT_TIMEOUT_SECONDS = 15.0
TRACE_HEADERS = ("traceparent", "tracestate")
NACKED = "nacked by broker"


class BrokerUnavailable(Exception):
    """The connection is gone or unusable; `confirmed` holds the outcomes known before that."""

    def __init__(self, reason: str, confirmed: dict[str, str | None] | None = None):
        super().__init__(reason)
        self.confirmed = confirmed or {}


class Unrecoverable(Exception):
    """An error retrying cannot fix (refused credentials, conflicting topology); the process exits 1."""


@dataclass(frozen=True)
class OutboxRow:
    """One outbox row as the relay needs it, whatever the service's database layer."""

    id: int
    event_id: str
    event_type: str
    payload: str
    headers: str | None
    created_at: dt.datetime
    attempts: int


@dataclass(frozen=True)
class OutgoingMessage:
    """One outbox row ready to publish."""

    event_id: str
    event_type: str
    routing_key: str
    body: bytes
    properties: pika.BasicProperties


def trace_headers(raw: str | None) -> dict[str, str]:
    """Return the W3C trace context stored with a row; anything else in the column stays private."""
    try:
        stored = json.loads(raw or "{}")
    except ValueError:
        return {}
    if not isinstance(stored, dict):
        return {}
    return {k: stored[k] for k in TRACE_HEADERS if isinstance(stored.get(k), str) and stored[k]}


def to_message(row: OutboxRow, producer: str) -> OutgoingMessage:
    """Build the AMQP message of an outbox row (properties as in README: Event catalogue)."""
    created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=dt.UTC)
    properties = pika.BasicProperties(
        message_id=row.event_id,
        type=row.event_type,
        content_type="application/json",
        delivery_mode=2,
        app_id=producer,
        timestamp=calendar.timegm(created.utctimetuple()),
        headers=trace_headers(row.headers),
    )
    return OutgoingMessage(
        row.event_id, row.event_type, row.event_type, row.payload.encode("utf-8"), properties
    )


class ConfirmTracker:
    """Match the broker's acks, nacks and returns of one batch to event ids."""

    def __init__(self):
        self._pending: OrderedDict[int, str] = OrderedDict()
        self._returned: dict[str, str] = {}
        self.results: dict[str, str | None] = {}

    def sent(self, tag: int, event_id: str) -> None:
        """Remember that delivery tag `tag` carries event_id."""
        self._pending[tag] = event_id

    def returned(self, event_id: str | None, reason: str) -> None:
        """Record a Basic.Return (unroutable); the broker still acks it afterwards."""
        if event_id is not None:
            self._returned[event_id] = reason

    def confirm(self, tag: int, multiple: bool, ack: bool) -> None:
        """Apply a Basic.Ack/Basic.Nack (multiple=True covers every tag up to `tag`)."""
        tags = [t for t in self._pending if t <= tag] if multiple else ([tag] if tag in self._pending else [])
        for t in tags:
            event_id = self._pending.pop(t)
            self.results[event_id] = self._returned.get(event_id) if ack else NACKED

    @property
    def outstanding(self) -> int:
        """How many sent messages wait for their ack or nack."""
        return len(self._pending)

    @property
    def done(self) -> bool:
        """Whether every sent message has been acked or nacked."""
        return not self._pending


class AmqpPublisher:
    """Publish batches on one long-lived confirm-mode channel (pika SelectConnection)."""

    def __init__(
        self,
        parameters: pika.connection.Parameters | Sequence[pika.connection.Parameters],
        topology: Topology,
        *,
        wake_socket: socket.socket | None = None,
        confirm_timeout: float = CONFIRM_TIMEOUT_SECONDS,
        confirm_stall: float = CONFIRM_STALL_SECONDS,
        connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
    ):
        self._brokers = broker.Brokers.of(parameters)
        self._topology = topology
        self._wake_socket = wake_socket
        self._confirm_timeout = confirm_timeout
        self._confirm_stall = confirm_stall
        self._blocked = False
        self._last_confirm = 0.0
        self._connect_timeout = connect_timeout
        self._ioloop: IOLoop | None = None
        self._conn: pika.SelectConnection | None = None
        self._channel = None
        self._ready = False
        self._lost: str | None = None
        self._fatal: str | None = None
        self._tag = 0
        self._tracker: ConfirmTracker | None = None
        self._predicate: Callable[[], bool] | None = None
        self._woken = False

    # -- connection ---------------------------------------------------------------------------
    def connect(self) -> None:
        """Connect to the first broker address that answers, declare the topology there, open a
        confirm-mode channel."""
        self._ready, self._lost, self._fatal, self._tag = False, None, None, 0
        self._blocked = False
        self._ioloop = IOLoop()
        if self._wake_socket is not None:
            self._ioloop.add_handler(self._wake_socket.fileno(), self._on_wake, PollEvents.READ)
        try:
            self._conn = self._open(self._brokers.order())
            self._conn.add_on_close_callback(self._on_closed)
            self._conn.add_on_connection_blocked_callback(self._on_blocked)
            self._conn.add_on_connection_unblocked_callback(self._on_unblocked)
            self._declare_topology(self._conn.params)
            self._conn.channel(on_open_callback=self._on_channel_open)
            self._run_until(lambda: self._ready or self._lost is not None, self._connect_timeout)
        except BaseException:
            self.close()
            raise
        if self._fatal:
            self.close()
            raise Unrecoverable(self._fatal)
        if not self._ready:
            reason = self._lost or "connect timed out"
            self.close()
            raise BrokerUnavailable(reason)

    def _open(self, candidates: list[pika.connection.Parameters]) -> pika.SelectConnection:
        """Open a connection to the first of candidates that answers (pika's own connection workflow)."""
        done: list = []

        def on_done(result) -> None:
            done.append(result)
            self._check()

        workflow = pika.SelectConnection.create_connection(candidates, on_done, custom_ioloop=self._ioloop)
        # Each address has its own chance: pika bounds each attempt (socket_timeout, stack_timeout).
        self._run_until(lambda: bool(done), self._connect_timeout * len(candidates))
        if not done:
            with contextlib.suppress(connection_workflow.AMQPConnectorException):
                workflow.abort()
            self._run_until(lambda: bool(done), 5.0)
            if done and not isinstance(done[0], BaseException):
                done[0].close()  # it answered at the last moment: too late
                self._run_until(lambda: done[0].is_closed, 5.0)
            raise BrokerUnavailable(f"connect timed out ({broker.where(candidates)})")
        if isinstance(done[0], BaseException):
            error = broker.workflow_error(done[0])
            if broker.is_fatal(error):
                raise Unrecoverable(f"the broker refused us: {error!r}")
            raise BrokerUnavailable(f"cannot connect: {error!r}")
        return done[0]

    def _declare_topology(self, params: pika.connection.Parameters) -> None:
        # A short blocking connection to the node that just answered keeps declarations simple;
        # publishing uses the async one.
        try:
            conn = pika.BlockingConnection(params)
        except pika.exceptions.AMQPError as exc:
            if broker.is_fatal(exc):
                raise Unrecoverable(f"the broker refused us: {exc!r}") from exc
            raise BrokerUnavailable(f"cannot connect: {exc!r}") from exc
        try:
            self._topology.declare_publisher(conn.channel())
        except pika.exceptions.AMQPError as exc:
            if broker.is_fatal(exc):
                raise Unrecoverable(f"declaring the topology failed: {broker.explain(exc)}") from exc
            raise BrokerUnavailable(f"declaring the topology failed: {exc!r}") from exc
        finally:
            try:
                conn.close()
            except pika.exceptions.AMQPError:
                pass

    def _on_closed(self, _conn, reason) -> None:
        self._ready = False
        self._lost = f"connection closed: {reason!r}"
        self._check()

    def _on_channel_open(self, channel) -> None:
        self._channel = channel
        channel.add_on_close_callback(self._on_channel_closed)
        channel.add_on_return_callback(self._on_return)
        channel.confirm_delivery(ack_nack_callback=self._on_confirm, callback=self._on_confirm_ok)

    def _on_confirm_ok(self, _frame) -> None:
        self._ready = True
        self._check()

    def _on_channel_closed(self, _channel, reason) -> None:
        self._ready = False
        if broker.is_fatal(reason):
            self._fatal = f"channel closed by the broker: {reason!r}"
        self._lost = f"channel closed: {reason!r}"
        if self._conn is not None and self._conn.is_open:
            self._conn.close()
        self._check()

    def _on_blocked(self, _conn, frame) -> None:
        # A resource alarm: the broker holds publishes back on purpose; only the overall confirm
        # timeout (and pika's blocked_connection_timeout) apply.
        self._blocked = True
        logger.warning(
            "the broker blocks publishing (%s)", getattr(frame.method, "reason", "a resource alarm")
        )

    def _on_unblocked(self, _conn, _frame) -> None:
        self._blocked = False
        self._last_confirm = time.monotonic()
        logger.warning("the broker takes publishes again")

    def _on_return(self, _channel, method, properties, _body) -> None:
        if self._tracker is not None:
            self._tracker.returned(
                properties.message_id, f"returned by broker: {method.reply_code} {method.reply_text}"
            )

    def _on_confirm(self, frame) -> None:
        method = frame.method
        if self._tracker is not None:
            self._tracker.confirm(method.delivery_tag, bool(method.multiple), isinstance(method, Basic.Ack))
        self._last_confirm = time.monotonic()
        self._check()

    def _on_wake(self, _fd, _events) -> None:
        try:
            while self._wake_socket.recv(512):
                pass
        except OSError:
            pass  # drained (BlockingIOError) or closed
        self._woken = True
        self._check()

    # -- I/O loop driving -------------------------------------------------------------------------
    def _check(self) -> None:
        if self._predicate is not None and self._predicate() and self._ioloop is not None:
            self._ioloop.stop()

    def _run_until(self, predicate: Callable[[], bool], timeout: float) -> None:
        """Run the I/O loop until predicate() is true or timeout seconds have passed."""
        if predicate() or self._ioloop is None:
            return
        ioloop = self._ioloop
        deadline = time.monotonic() + timeout
        timer = ioloop.call_later(timeout, ioloop.stop)
        self._predicate = predicate
        try:
            while not predicate() and time.monotonic() < deadline:
                ioloop.start()
        finally:
            self._predicate = None
            ioloop.remove_timeout(timer)

    # -- publishing ---------------------------------------------------------------------------
    def publish_batch(self, messages: list[OutgoingMessage]) -> dict[str, str | None]:
        """Publish all messages, wait once for their confirms; map event id -> None or the error.

        Raises BrokerUnavailable (with the outcomes known so far) when the connection is lost or the
        confirms do not all arrive in time: a late confirm could not be credited safely.
        """
        if not self._ready or self._channel is None or self._lost is not None:
            raise BrokerUnavailable(self._lost or "not connected")
        tracker = ConfirmTracker()
        self._tracker = tracker
        try:
            for message in messages:
                self._channel.basic_publish(
                    self._topology.events_exchange,
                    message.routing_key,
                    message.body,
                    message.properties,
                    mandatory=True,
                )
                self._tag += 1
                tracker.sent(self._tag, message.event_id)
        except pika.exceptions.AMQPError as exc:
            self._lost = self._lost or f"publish failed: {exc!r}"
        stalled, started, slow_logged = False, time.monotonic(), False
        try:
            deadline = started + self._confirm_timeout
            self._last_confirm = started
            while not (tracker.done or self._lost is not None):
                now = time.monotonic()
                if now >= deadline:
                    break
                if not slow_logged and now - started >= SLOW_CONFIRM_SECONDS:
                    slow_logged = True
                    logger.warning(
                        "%s of %s confirms still outstanding after %.0f s%s",
                        tracker.outstanding,
                        len(messages),
                        now - started,
                        " (the broker blocks publishing)" if self._blocked else "",
                    )
                if not self._blocked and now - self._last_confirm >= self._confirm_stall:
                    stalled = True
                    break
                wait = deadline - now
                if not self._blocked:
                    wait = min(wait, self._last_confirm + self._confirm_stall - now)
                if not slow_logged:
                    wait = min(wait, started + SLOW_CONFIRM_SECONDS - now)
                self._run_until(lambda: tracker.done or self._lost is not None, max(wait, 0.001))
        finally:
            self._tracker = None
        if self._fatal:
            raise Unrecoverable(self._fatal)
        if self._lost is not None:
            raise BrokerUnavailable(self._lost, confirmed=tracker.results)
        if not tracker.done:
            self._lost = (
                f"no confirm for {self._confirm_stall:.0f} s (a queue's leader may have moved)"
                if stalled
                else "confirms timed out"
            )
            raise BrokerUnavailable(self._lost, confirmed=tracker.results)
        return tracker.results

    def wait(self, seconds: float, should_stop: Callable[[], bool]) -> None:
        """Idle up to seconds, servicing the connection; return early on a wake-up datagram.

        A datagram that arrived since the last clear_wakeups() (e.g. during a confirm wait) returns
        at once: the rows it announced may not have been claimed yet.
        """
        self._run_until(lambda: self._woken or should_stop() or self._lost is not None, seconds)
        if self._fatal:
            raise Unrecoverable(self._fatal)
        if self._lost is not None:
            raise BrokerUnavailable(self._lost)

    def pause(self, seconds: float) -> None:
        """Service the connection for seconds, whatever wake-ups arrive meanwhile."""
        self._run_until(lambda: self._lost is not None, seconds)
        if self._fatal:
            raise Unrecoverable(self._fatal)
        if self._lost is not None:
            raise BrokerUnavailable(self._lost)

    def clear_wakeups(self) -> None:
        """Forget wake-ups received so far; call right before claiming rows."""
        self._woken = False

    def close(self) -> None:
        """Close the connection and its I/O loop (safe to call more than once)."""
        conn, self._conn = self._conn, None
        self._ready = False
        if self._ioloop is None:
            return
        try:
            if conn is not None and conn.is_open:
                conn.close()
            if conn is not None and not conn.is_closed:
                self._run_until(lambda: conn.is_closed, 5.0)
        except pika.exceptions.AMQPError:
            logger.debug("error while closing the relay connection", exc_info=True)
        finally:
            ioloop, self._ioloop = self._ioloop, None
            if self._wake_socket is not None:
                try:
                    ioloop.remove_handler(self._wake_socket.fileno())
                except (KeyError, ValueError, OSError):
                    pass
            ioloop.close()


def open_wakeup_socket(addr: str | None) -> socket.socket | None:
    """Bind the UDP wake-up socket on addr ("host:port"); None (poll only) when that fails."""
    if not addr:
        return None
    try:
        host, _, port = addr.rpartition(":")
        family, _, _, _, sockaddr = socket.getaddrinfo(
            host.strip("[]") or "127.0.0.1", int(port), type=socket.SOCK_DGRAM
        )[0]
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, "SO_REUSEPORT"):
            # Several relays may run on one host; each gets some of the datagrams, all still poll.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(sockaddr)
        sock.setblocking(False)
    except (OSError, ValueError):
        logger.warning("cannot listen for outbox wake-ups on %s; polling only", addr, exc_info=True)
        return None
    return sock
