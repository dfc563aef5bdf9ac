"""Outbox relay: publish pending outbox rows to RabbitMQ with publisher confirms.

Loop: claim up to BATCH_SIZE pending rows in id order (FOR UPDATE SKIP LOCKED on MySQL/MariaDB, so
several relays never claim the same row), publish them all on one long-lived confirm-mode channel,
wait once for all their confirms, then mark the confirmed rows published in the same transaction.
Nacked or returned rows get attempts+1 and a later available_at; rows whose fate is unknown (broker
gone mid-batch) stay pending and are sent again (consumers deduplicate by message id).
"""

from __future__ import annotations

import calendar
import json
import logging
import socket
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pika
import pika.exceptions
from eventbus import connection as broker
from eventbus.connection import BrokerWait
from eventbus.runtime import Backoff, StopSignal, metrics_port
from pika.adapters.select_connection import PollEvents
from pika.spec import Basic
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import SQLAlchemyError

from app.extensions import db, is_mysql
from app.messaging import contract, metrics, topology
from app.messaging.worker import DATABASE_ERRORS, RELAY_METRICS_PORT, beat, pika_warnings_only
from app.models import InboxEvent, OutboxEvent, utcnow

logger = logging.getLogger(__name__)

HEARTBEAT_NAME = "main-relay"
BATCH_SIZE = 500
POLL_SECONDS = 1.0
CONFIRM_TIMEOUT_SECONDS = 30.0
CONNECT_TIMEOUT_SECONDS = 15.0
HOUSEKEEPING_SECONDS = 5.0
PRUNE_SECONDS = 60.0
PRUNE_CHUNK = 1000
# Backoff of a nacked/returned row: 1 s, 2 s, 4 s ... capped at 5 minutes.
RETRY_BASE_SECONDS = 1.0
RETRY_CAP_SECONDS = 300.0

_OUTBOX = OutboxEvent.__table__
_INBOX = InboxEvent.__table__



class BrokerUnavailable(Exception):
    """The broker connection is gone or unusable; `confirmed` holds outcomes known before that."""

    def __init__(self, reason: str, confirmed: dict[str, str | None] | None = None):
        super().__init__(reason)
        self.confirmed = confirmed or {}


class Unrecoverable(Exception):
    """An error retrying cannot fix (bad credentials, conflicting topology); the process exits 1."""


@dataclass(frozen=True)
class OutgoingMessage:
    """One outbox row ready to publish."""

    row_id: int
    event_id: str
    routing_key: str
    body: bytes
    properties: pika.BasicProperties


def retry_delay(attempts: int) -> float:
    """Return the backoff in seconds before retrying a row that failed `attempts` times."""
    return min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1))


def message_from_row(row) -> OutgoingMessage:
    """Build the AMQP message of an outbox row (properties as in README: Event catalogue)."""
    try:
        headers = json.loads(row.headers or "{}")
    except ValueError:
        headers = {}
    if not isinstance(headers, dict):
        headers = {}
    # Only the W3C trace context travels; anything else in the column stays private.
    headers = {k: str(v) for k, v in headers.items() if k in ("traceparent", "tracestate")}
    properties = pika.BasicProperties(
        message_id=row.event_id,
        type=row.event_type,
        content_type="application/json",
        delivery_mode=2,
        app_id=contract.PRODUCER,
        timestamp=calendar.timegm(row.created_at.utctimetuple()),
        headers=headers,
    )
    return OutgoingMessage(
        row_id=row.id,
        event_id=row.event_id,
        routing_key=row.event_type,
        body=row.payload.encode("utf-8"),
        properties=properties,
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
        if multiple:
            tags = [t for t in self._pending if t <= tag]
        else:
            tags = [tag] if tag in self._pending else []
        for t in tags:
            event_id = self._pending.pop(t)
            if not ack:
                self.results[event_id] = "nacked by broker"
            else:
                self.results[event_id] = self._returned.get(event_id)

    @property
    def done(self) -> bool:
        """Whether every sent message has been acked or nacked."""
        return not self._pending


class AmqpPublisher:
    """Publish batches on one long-lived confirm-mode channel (pika SelectConnection).

    pika's BlockingChannel waits for each confirm in basic_publish; here the whole batch is written
    first and the ioloop then runs until every confirm of the batch has arrived.
    """

    def __init__(
        self,
        parameters: pika.ConnectionParameters,
        *,
        exchange: str = topology.EVENTS_EXCHANGE,
        wake_socket: socket.socket | None = None,
        confirm_timeout: float = CONFIRM_TIMEOUT_SECONDS,
        connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
    ):
        self._params = parameters
        self._exchange = exchange
        self._wake_socket = wake_socket
        self._confirm_timeout = confirm_timeout
        self._connect_timeout = connect_timeout
        self._conn: pika.SelectConnection | None = None
        self._channel = None
        self._ready = False
        self._lost: str | None = None
        self._fatal: str | None = None
        self._tag = 0
        self._tracker: ConfirmTracker | None = None
        self._predicate: Callable[[], bool] | None = None
        self._woken = False

    # -- connection -------------------------------------------------------------------------
    def connect(self) -> None:
        """Declare the topology, open the connection and a confirm-mode channel."""
        self._declare_topology()
        self._ready, self._lost, self._fatal, self._tag = False, None, None, 0
        self._conn = pika.SelectConnection(
            self._params,
            on_open_callback=self._on_open,
            on_open_error_callback=self._on_open_error,
            on_close_callback=self._on_closed,
        )
        if self._wake_socket is not None:
            self._conn.ioloop.add_handler(self._wake_socket.fileno(), self._on_wake, PollEvents.READ)
        self._run_until(lambda: self._ready or self._lost is not None, self._connect_timeout)
        if self._fatal:
            self.close()
            raise Unrecoverable(self._fatal)
        if not self._ready:
            reason = self._lost or "connect timed out"
            self.close()
            raise BrokerUnavailable(reason)

    def _declare_topology(self) -> None:
        # A short blocking connection keeps declarations simple; publishing uses the async one.
        try:
            conn = pika.BlockingConnection(self._params)
        except pika.exceptions.AMQPError as exc:
            if broker.is_fatal(exc):
                raise Unrecoverable(f"the broker refused us: {exc!r}") from exc
            raise BrokerUnavailable(f"cannot connect: {exc!r}") from exc
        try:
            topology.declare_publisher(conn.channel())
        except pika.exceptions.ChannelClosedByBroker as exc:
            if broker.is_fatal(exc):
                raise Unrecoverable(f"declaring topology failed: {exc!r}") from exc
            raise BrokerUnavailable(f"declaring topology failed: {exc!r}") from exc
        except pika.exceptions.AMQPError as exc:
            raise BrokerUnavailable(f"declaring topology failed: {exc!r}") from exc
        finally:
            try:
                conn.close()
            except pika.exceptions.AMQPError:
                pass

    def _on_open(self, conn) -> None:
        conn.channel(on_open_callback=self._on_channel_open)

    def _on_open_error(self, _conn, error) -> None:
        if broker.is_fatal(error):
            self._fatal = f"the broker refused us: {error!r}"
        self._lost = f"connection failed: {error!r}"
        self._check()

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
            self._fatal = f"channel closed by broker: {reason!r}"
        self._lost = f"channel closed: {reason!r}"
        if self._conn is not None and self._conn.is_open:
            self._conn.close()
        self._check()

    def _on_return(self, _channel, method, properties, _body) -> None:
        if self._tracker is not None:
            reason = f"returned by broker: {method.reply_code} {method.reply_text}"
            self._tracker.returned(properties.message_id, reason)

    def _on_confirm(self, frame) -> None:
        method = frame.method
        if self._tracker is not None:
            ack = isinstance(method, Basic.Ack)
            self._tracker.confirm(method.delivery_tag, bool(method.multiple), ack)
        self._check()

    def _on_wake(self, _fd, _events) -> None:
        try:
            while self._wake_socket.recv(512):
                pass
        except OSError:
            pass  # drained (BlockingIOError) or closed
        self._woken = True
        self._check()

    # -- ioloop driving -----------------------------------------------------------------------
    def _check(self) -> None:
        if self._predicate is not None and self._predicate() and self._conn is not None:
            self._conn.ioloop.stop()

    def _run_until(self, predicate: Callable[[], bool], timeout: float) -> None:
        """Run the ioloop until predicate() is true or timeout seconds have passed."""
        if predicate() or self._conn is None:
            return
        ioloop = self._conn.ioloop
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
        """Publish all messages, wait once for their confirms; map event id -> None or error."""
        if not self._ready or self._channel is None:
            raise BrokerUnavailable(self._lost or "not connected")
        tracker = ConfirmTracker()
        self._tracker = tracker
        try:
            for message in messages:
                self._channel.basic_publish(
                    self._exchange,
                    message.routing_key,
                    message.body,
                    message.properties,
                    mandatory=True,
                )
                self._tag += 1
                tracker.sent(self._tag, message.event_id)
        except pika.exceptions.AMQPError as exc:
            self._lost = self._lost or f"publish failed: {exc!r}"
        try:
            self._run_until(lambda: tracker.done or self._lost is not None, self._confirm_timeout)
        finally:
            self._tracker = None
        if self._fatal:
            raise Unrecoverable(self._fatal)
        if self._lost is not None:
            raise BrokerUnavailable(self._lost, confirmed=tracker.results)
        if not tracker.done:
            # Late confirms would be ambiguous; start over on a fresh channel.
            self._lost = "confirms timed out"
            raise BrokerUnavailable(self._lost, confirmed=tracker.results)
        return tracker.results

    def wait(self, seconds: float, should_stop: Callable[[], bool]) -> None:
        """Idle up to seconds, servicing the connection; return early on a wake-up datagram.

        A datagram that arrived since the last clear_wakeups() (e.g. during a confirm wait)
        returns at once: the rows it announced may not have been claimed yet.
        """
        self._run_until(lambda: self._woken or should_stop() or self._lost is not None, seconds)
        if self._fatal:
            raise Unrecoverable(self._fatal)
        if self._lost is not None:
            raise BrokerUnavailable(self._lost)

    def clear_wakeups(self) -> None:
        """Forget wake-ups received so far; call right before claiming rows."""
        self._woken = False

    def close(self) -> None:
        """Close the connection and its ioloop (safe to call more than once)."""
        conn, self._conn = self._conn, None
        self._ready = False
        if conn is None:
            return
        try:
            if conn.is_open:
                conn.close()
            if not conn.is_closed:
                self._conn = conn
                self._run_until(lambda: conn.is_closed, 5.0)
                self._conn = None
        except pika.exceptions.AMQPError:
            logger.debug("error while closing the relay connection", exc_info=True)
        finally:
            self._conn = None
            if self._wake_socket is not None:
                try:
                    conn.ioloop.remove_handler(self._wake_socket.fileno())
                except (KeyError, ValueError, OSError):
                    pass
            conn.ioloop.close()


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


class Relay:
    """The relay's work against the database; the publisher is injected (a fake in unit tests)."""

    def __init__(self, publisher, *, batch_size: int = BATCH_SIZE, clock=time.monotonic):
        self.publisher = publisher
        self.batch_size = batch_size
        self.clock = clock
        self._last_housekeeping = float("-inf")
        self._last_prune = float("-inf")

    def claim(self, session) -> list:
        """Select (and on MySQL lock) up to batch_size pending, due rows in id order."""
        query = (
            select(
                _OUTBOX.c.id,
                _OUTBOX.c.event_id,
                _OUTBOX.c.event_type,
                _OUTBOX.c.payload,
                _OUTBOX.c.headers,
                _OUTBOX.c.created_at,
                _OUTBOX.c.attempts,
            )
            .where(_OUTBOX.c.published_at.is_(None), _OUTBOX.c.available_at <= utcnow())
            .order_by(_OUTBOX.c.id)
            .limit(self.batch_size)
            # Rendered only where supported (MySQL/MariaDB 10.6+); SQLite has one writer anyway.
            .with_for_update(skip_locked=True)
        )
        return list(session.execute(query))

    def run_once(self) -> int:
        """Publish one batch; return the number of rows claimed. Raises BrokerUnavailable."""
        session = db.session
        broker_error: BrokerUnavailable | None = None
        try:
            if is_mysql(db.engine):
                # READ COMMITTED: no gap locks, so the web's new outbox inserts never wait on us.
                session.connection(execution_options={"isolation_level": "READ COMMITTED"})
            rows = self.claim(session)
            if not rows:
                session.rollback()
                return 0
            if not is_mysql(db.engine):
                # SQLite has no row locks, and its transaction holds the whole file's write lock:
                # end it before the broker round trip, so no request waits for the confirms. The
                # marks get their own short transaction (two relays on one SQLite file may then both
                # send a row; the consumer's inbox drops the copy).
                session.commit()
            messages = [message_from_row(row) for row in rows]
            started = time.monotonic()
            try:
                outcomes = self.publisher.publish_batch(messages)
            except BrokerUnavailable as exc:
                outcomes, broker_error = exc.confirmed, exc
            else:
                metrics.RELAY_CONFIRM_LATENCY.observe(time.monotonic() - started)
            self._record(session, rows, outcomes)
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
        if broker_error is not None:
            raise broker_error
        return len(rows)

    def _record(self, session, rows, outcomes: dict[str, str | None]) -> None:
        now = utcnow()
        published = [row.id for row in rows if row.event_id in outcomes and outcomes[row.event_id] is None]
        if published:
            session.execute(update(_OUTBOX).where(_OUTBOX.c.id.in_(published)).values(published_at=now))
        for row in rows:
            if row.event_id not in outcomes:
                continue  # fate unknown: stays pending, is sent again
            error = outcomes[row.event_id]
            if error is None:
                metrics.EVENTS_PUBLISHED.labels(type=metrics.type_label(row.event_type)).inc()
                continue
            attempts = row.attempts + 1
            session.execute(
                update(_OUTBOX)
                .where(_OUTBOX.c.id == row.id)
                .values(
                    attempts=attempts,
                    available_at=now + timedelta(seconds=retry_delay(attempts)),
                    last_error=error[:1000],
                )
            )
            logger.warning(
                "outbox row %s not published (%s); retry %s",
                row.id,
                error,
                attempts,
                extra={"event_id": row.event_id, "event_type": row.event_type},
            )

    def housekeeping(self, retention_hours: float, inbox_retention_hours: float) -> None:
        """Heartbeat and gauges every few seconds; prune old rows every minute."""
        now = self.clock()
        if now - self._last_housekeeping >= HOUSEKEEPING_SECONDS:
            self._last_housekeeping = now
            beat(HEARTBEAT_NAME)
            self.update_gauges()
        if now - self._last_prune >= PRUNE_SECONDS:
            self._last_prune = now
            self.prune(retention_hours, inbox_retention_hours)

    def update_gauges(self) -> None:
        """Set outbox_pending and outbox_oldest_age_seconds from the table."""
        try:
            with db.engine.connect() as conn:
                count, oldest = conn.execute(
                    select(func.count(), func.min(_OUTBOX.c.created_at)).where(
                        _OUTBOX.c.published_at.is_(None)
                    )
                ).one()
        except SQLAlchemyError:
            logger.warning("reading outbox gauges failed", exc_info=True)
            return
        metrics.OUTBOX_PENDING.set(count)
        metrics.OUTBOX_OLDEST_AGE.set(
            max(0.0, (utcnow() - oldest).total_seconds()) if oldest is not None else 0.0
        )

    def prune(self, retention_hours: float, inbox_retention_hours: float) -> int:
        """Delete published outbox rows and inbox rows older than their retention; return the count."""
        deleted = 0
        now = utcnow()
        jobs = (
            (
                _OUTBOX,
                _OUTBOX.c.id,
                _OUTBOX.c.published_at,
                now - timedelta(hours=retention_hours),
            ),
            (
                _INBOX,
                _INBOX.c.message_id,
                _INBOX.c.received_at,
                now - timedelta(hours=inbox_retention_hours),
            ),
        )
        try:
            for table, key, stamp, cutoff in jobs:
                # Small chunks keep locks short; MySQL refuses LIMIT inside IN (subquery).
                for _ in range(100):
                    with db.engine.begin() as conn:
                        keys = (
                            conn.execute(
                                select(key).where(stamp.is_not(None), stamp < cutoff).limit(PRUNE_CHUNK)
                            )
                            .scalars()
                            .all()
                        )
                        if keys:
                            conn.execute(delete(table).where(key.in_(keys)))
                    deleted += len(keys)
                    if len(keys) < PRUNE_CHUNK:
                        break
        except SQLAlchemyError:
            logger.warning("pruning outbox/inbox failed", exc_info=True)
        if deleted:
            logger.info("pruned %s old outbox/inbox rows", deleted)
        return deleted


def run_relay(app) -> None:
    """Run the outbox relay until SIGTERM (exit 0); exit 1 on an unrecoverable error."""
    stop = StopSignal()
    stop.install()
    pika_warnings_only()
    metrics.serve(metrics_port(RELAY_METRICS_PORT))
    params = topology.connection_parameters(
        app.config["RABBITMQ_URL"],
        app.config.get("RABBITMQ_CA_FILE"),
        client_name="main-relay",
    )
    wake_socket = open_wakeup_socket(app.config.get("OUTBOX_WAKEUP_ADDR"))
    retention = float(app.config.get("OUTBOX_RETENTION_HOURS", 24))
    inbox_retention = float(app.config.get("INBOX_RETENTION_HOURS", 168))
    backoff = Backoff(base=0.5, cap=5.0)
    db_backoff = Backoff(base=0.5, cap=5.0)
    broker_wait = BrokerWait(params)
    publisher: AmqpPublisher | None = None
    relay = Relay(None)
    logger.info("outbox relay starting")
    try:
        with app.app_context():
            while not stop.requested:
                try:
                    if publisher is None:
                        publisher = AmqpPublisher(params, wake_socket=wake_socket)
                        with broker_wait.attempt():
                            publisher.connect()
                        broker_wait.succeeded()
                        relay.publisher = publisher
                        backoff.reset()
                        logger.info("relay connected to the broker")
                    publisher.clear_wakeups()
                    claimed = relay.run_once()
                    relay.housekeeping(retention, inbox_retention)
                    db_backoff.reset()
                    if claimed < relay.batch_size:
                        publisher.wait(POLL_SECONDS, lambda: stop.requested)
                except BrokerUnavailable as exc:
                    if publisher is not None:
                        publisher.close()
                    publisher = None
                    delay = backoff.next()
                    if not broker_wait.failed(exc):
                        logger.warning("broker unavailable (%s); reconnecting in %.1f s", exc, delay)
                    relay.housekeeping(retention, inbox_retention)
                    stop.wait(delay)
                except DATABASE_ERRORS as exc:
                    # Drop the whole pool: a driver error SQLAlchemy did not wrap (e.g. while
                    # setting the isolation level on check-out) leaves a dead connection in it.
                    try:
                        db.session.remove()
                    except DATABASE_ERRORS:
                        logger.warning("discarding the broken database session failed", exc_info=True)
                    db.engine.dispose()
                    delay = db_backoff.next()
                    logger.error("database error in relay (%s); retrying in %.1f s", exc, delay)
                    stop.wait(delay)
    except Unrecoverable as exc:
        logger.critical("relay stopping: %s", exc)
        raise SystemExit(1) from exc
    except Exception as exc:
        logger.critical("relay crashed", exc_info=True)
        raise SystemExit(1) from exc
    finally:
        if publisher is not None:
            publisher.close()
        if wake_socket is not None:
            wake_socket.close()
    logger.info("outbox relay stopped")
