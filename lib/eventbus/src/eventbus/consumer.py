"""The consumer: parse, deduplicate, apply, commit, then acknowledge (README: How an event travels).

Deliveries are taken as the broker pushes them (prefetch) and applied in batches: the service's
store records every event in its inbox and applies it in one transaction, and the batch is
acknowledged only after that commit. A crash between commit and acknowledgement redelivers the
batch, and the inbox turns the copies into harmless duplicates.

What a failure means decides what happens to the message:
- a body that breaks the contract is one dead letter, at once;
- an error of the database that is not this message's fault (an outage, a lock timeout, a
  missing table or column after a bad deploy) is retried in place, holding the messages,
  with a loud log; no heartbeat is written meanwhile, so readiness turns 503. Nothing is ever
  sent back to the queue on purpose: that would spend the queue's delivery limit;
- an error that is this message's (a handler bug, a constraint it breaks) first splits the
  batch, so that only the culprit is dead-lettered.

A dead letter says why (eventbus.failures): the consumer publishes it to the dead-letter exchange
itself, with failure headers, on a channel with publisher confirms, and acknowledges the original
only once the broker has confirmed the copy. Should that publish be refused, the message is
rejected instead, and the broker dead-letters it with its own `x-death` header.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import pika
import pika.connection
import pika.exceptions
from opentelemetry import propagate, trace

from eventbus import connection as broker
from eventbus import failures, workbench
from eventbus.connection import BrokerWait
from eventbus.metrics import ConsumerMetrics
from eventbus.runtime import Backoff, StopSignal
from eventbus.topology import Topology

logger = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

PREFETCH = 100
BATCH_SIZE = 100
# How long to wait for more deliveries to fill a batch: never long, a lone event goes at once.
BATCH_WINDOW_SECONDS = 0.005
HEARTBEAT_SECONDS = 5.0
# How often the dead-letter queue's depth and oldest age are read for the metrics.
DEAD_LETTER_CHECK_SECONDS = 15.0
# While an error is retried in place, say so at ERROR at most this often (WARNING in between).
LOUD_EVERY_SECONDS = 60.0
# Fault tests only: hold every acknowledgement this long after the commit, so that a kill can land
# between the two on purpose (tests/faults). Never set in a deployment.
HOLD_ACK_ENV = "EVENTBUS_FAULT_HOLD_ACK_SECONDS"

DUPLICATE = "duplicate"
DEAD_LETTERED = "dead_lettered"
ABANDONED = "abandoned"
# What InboxStore.classify says of an error.
RETRY = "retry"
REJECT = "reject"


class ApplyLog:
    """Log lines of applied events: one per event (INFO) up to `per_second` a second, then a summary.

    Under load a line per event would cost more CPU than applying it; past the budget, events are
    logged at DEBUG and one INFO line a second says how many were applied and how many dropped.
    """

    def __init__(self, per_second: int = 10, clock: Callable[[], float] = time.monotonic):
        self.per_second, self.clock = per_second, clock
        self._window = float("-inf")
        self._lines = self._quiet = 0

    def batch(self, events: list, results: list[str]) -> None:
        """Log a committed batch (its events and their outcomes, in order)."""
        now = self.clock()
        if now - self._window >= 1.0:
            self._summarise(now)
        debug = logger.isEnabledFor(logging.DEBUG)
        for event, outcome in zip(events, results, strict=True):
            if outcome == DUPLICATE:
                continue  # logged one by one, whatever the rate: each is worth a look
            if self._lines < self.per_second:
                self._lines += 1
                logger.info(
                    "event %s %s", event.id, outcome, extra={"event_id": event.id, "event_type": event.type}
                )
                continue
            self._quiet += 1
            if debug:
                logger.debug(
                    "event %s %s", event.id, outcome, extra={"event_id": event.id, "event_type": event.type}
                )

    def tick(self) -> None:
        """Write the summary of a window that has ended, even when no batch follows it."""
        now = self.clock()
        if self._quiet and now - self._window >= 1.0:
            self._summarise(now)

    def _summarise(self, now: float) -> None:
        if self._quiet:
            logger.info(
                "applied %s more events in %.1f s (one INFO line per event up to %s a second; the rest at DEBUG)",
                self._quiet,
                now - self._window,
                self.per_second,
            )
        self._window, self._lines, self._quiet = now, 0, 0


class InboxStore(Protocol):
    """What the consumer needs from a service's database layer (Django ORM, SQLAlchemy)."""

    def apply(self, events: list[Any]) -> list[str]:
        """Record the events in the inbox and apply them in ONE transaction; return an outcome each.

        An event whose id the inbox already holds (or that repeats inside the list) is "duplicate".
        Raises on any failure, with nothing committed.
        """

    def classify(self, exc: BaseException) -> str:
        """Return RETRY for an error that is not the message's fault (retried in place), else REJECT."""

    def heartbeat(self, name: str) -> None:
        """Record that worker `name` is alive."""

    def reset(self) -> None:
        """Drop the database connection after an error, so the next call opens a fresh one."""


class Unrecoverable(Exception):
    """An error retrying cannot fix (refused credentials, conflicting topology); the process exits 1."""


def _occurred_age(event) -> float:
    occurred = event.occurred_at if event.occurred_at.tzinfo else event.occurred_at.replace(tzinfo=dt.UTC)
    return max(0.0, (dt.datetime.now(dt.UTC) - occurred).total_seconds())


class Consumer:
    """One consumer process: its connection, the batches, the retries, the heartbeat."""

    def __init__(
        self,
        store: InboxStore,
        topology: Topology,
        metrics: ConsumerMetrics,
        *,
        params: pika.connection.Parameters | Sequence[pika.connection.Parameters],
        parse: Callable[[bytes, str | None, str | None], Any],
        invalid_event: type[Exception],
        heartbeat_name: str,
        prefetch: int = PREFETCH,
        batch_size: int = BATCH_SIZE,
        stop: StopSignal | None = None,
    ):
        self.store, self.topology, self.metrics = store, topology, metrics
        self.params, self.parse, self.invalid_event = params, parse, invalid_event
        self.brokers = broker.Brokers.of(params)
        self.heartbeat_name, self.prefetch, self.batch_size = heartbeat_name, prefetch, batch_size
        self.stop = stop or StopSignal()
        self.connection: pika.BlockingConnection | None = None
        self.channel = None
        self.dead_letter_channel = None
        self._buffer: list[tuple] = []
        self._next_beat = self._next_peek = 0.0
        self._last_error: BaseException | None = None
        self._log = ApplyLog()
        self.hold_ack = float(os.environ.get(HOLD_ACK_ENV) or 0)

    # -- one batch ------------------------------------------------------------------------------
    def handle_batch(
        self, channel, deliveries: list[tuple], sleep: Callable[[float], None] = time.sleep
    ) -> list[str]:
        """Handle deliveries (method, properties, body) in delivery order; settle each; return the outcomes."""
        outcomes: dict[int, str] = {}
        parsed = []
        for method, properties, body in deliveries:
            event = self._parse(channel, method, properties, body)
            if event is None:
                outcomes[method.delivery_tag] = DEAD_LETTERED
            else:
                parsed.append((method, properties, event, body))
        if parsed:
            for (method, *_), outcome in zip(parsed, self._apply(channel, parsed, sleep), strict=True):
                outcomes[method.delivery_tag] = outcome
        return [outcomes[method.delivery_tag] for method, _, _ in deliveries]

    def _parse(self, channel, method, properties, body: bytes):
        try:
            if not properties.message_id:
                raise self.invalid_event("message has no message_id", "missing_message_id")
            return self.parse(body, properties.message_id, properties.type)
        except self.invalid_event as exc:
            event_id = getattr(exc, "event_id", None) or properties.message_id
            event_type = getattr(exc, "event_type", None) or properties.type
            reason = getattr(exc, "reason", None) or str(exc)
            code = getattr(exc, "code", "bad_data")
            # A broken contract has no stack worth grouping by: its group is the contract's code.
            headers = failures.failure_headers(
                properties,
                reason=code,
                queue=self.topology.queue,
                exception_type=type(exc).__name__,
                message=reason,
                where_=code,
            )
            self._dead_letter(channel, method, properties, body, headers, event_id, event_type, code, reason)
            return None

    def _dead_letter(
        self,
        channel,
        method,
        properties,
        body: bytes,
        headers: dict,
        event_id,
        event_type,
        reason: str,
        why: str,
    ) -> None:
        """Publish the message with its failure headers to the dead-letter exchange, then ack it."""
        if not self._publish_dead_letter(method, properties, body, headers, event_id):
            # basic.reject without requeue: the queue dead-letters it, with x-death. (RabbitMQ 4.3
            # no longer counts a basic.nack towards the delivery limit; a reject counts on every version.)
            channel.basic_reject(delivery_tag=method.delivery_tag, requeue=False)
        else:
            channel.basic_ack(delivery_tag=method.delivery_tag)
        self.metrics.dead_lettered.labels(type=self.metrics.type_label(event_type), reason=reason).inc()
        logger.warning(
            "dead-lettering event %s (%s): %s",
            event_id,
            event_type,
            why,
            extra={
                "event_id": event_id,
                "event_type": event_type,
                "reason": reason,
                "fingerprint": headers.get(failures.FINGERPRINT),
            },
        )

    def _publish_dead_letter(self, method, properties, body: bytes, headers: dict, event_id) -> bool:
        """Return True once the broker confirmed the copy in the dead-letter exchange; False if refused."""
        if self.dead_letter_channel is None:
            return False
        dead = copy.copy(properties)
        dead.headers = headers
        dead.delivery_mode = 2
        try:
            self.dead_letter_channel.basic_publish(
                self.topology.dead_letter_exchange, method.routing_key or "", body, dead, mandatory=True
            )
        except (pika.exceptions.UnroutableError, pika.exceptions.NackError) as exc:
            logger.warning("the dead-letter exchange refused %s (%r); rejecting it instead", event_id, exc)
            return False
        except pika.exceptions.ChannelClosed as exc:
            # Our channel alone (e.g. no write permission on the dead-letter exchange): the broker
            # still dead-letters the message on reject; the channel is opened again on reconnect.
            logger.error(
                "cannot publish to %s (%s); rejecting %s instead, it is dead-lettered without failure headers",
                self.topology.dead_letter_exchange,
                broker.explain(exc),
                event_id,
            )
            self.dead_letter_channel = None
            return False
        return True

    def _apply(self, channel, parsed: list[tuple], sleep) -> list[str]:
        events = [event for _, _, event, _ in parsed]
        spans = [
            tracer.start_span(
                f"{self.topology.queue} process",
                context=propagate.extract({k: str(v) for k, v in (properties.headers or {}).items()}),
                kind=trace.SpanKind.CONSUMER,
                attributes={
                    "messaging.system": "rabbitmq",
                    "messaging.operation.type": "process",
                    "messaging.destination.name": self.topology.queue,
                    "messaging.message.id": event.id,
                    "messaging.batch.message_count": len(parsed),
                    "event.type": event.type,
                },
            )
            for _, properties, event, _ in parsed
        ]
        try:
            if len(spans) == 1:  # a lone event's work (database spans, log lines) joins its trace
                with trace.use_span(spans[0], end_on_exit=False):
                    results = self._apply_in_place(events, sleep)
            else:
                results = self._apply_in_place(events, sleep)
        finally:
            for span in spans:
                span.end()
        if results is ABANDONED:
            return [ABANDONED] * len(parsed)
        if results is None:  # this batch holds a message that cannot be applied: find it
            if len(parsed) == 1:
                method, properties, event, body = parsed[0]
                error = self._last_error
                headers = failures.failure_headers(
                    properties, reason="handler_error", queue=self.topology.queue, exc=error
                )
                why = (
                    f"it cannot be applied ({type(error).__name__}: {error})"
                    if error
                    else "it cannot be applied"
                )
                self._dead_letter(
                    channel, method, properties, body, headers, event.id, event.type, "handler_error", why
                )
                return [DEAD_LETTERED]
            return [outcome for item in parsed for outcome in self._apply(channel, [item], sleep)]
        # Committed: only now may the broker forget the messages. Every earlier delivery on this
        # channel is settled (batches run in order), so one multiple ack covers the batch.
        tags = [method.delivery_tag for method, *_ in parsed]
        if self.hold_ack:
            sleep(self.hold_ack)
        channel.basic_ack(delivery_tag=max(tags), multiple=len(tags) > 1)
        self._record(events, results)
        return results

    def _apply_in_place(self, events: list, sleep):
        """Return the outcomes; None when an event is at fault; ABANDONED when a stop came first."""
        backoff, loud_at = Backoff(0.5, 5.0), 0.0
        while True:
            try:
                return self.store.apply(events)
            except Exception as exc:  # noqa: BLE001 - the store says whose fault it is
                if self.store.classify(exc) == REJECT:
                    self._last_error = exc
                    logger.warning(
                        "a batch of %s events failed (%r)", len(events), exc, exc_info=len(events) == 1
                    )
                    return None
                self.store.reset()  # the connection may be broken: the next attempt opens a fresh one
                if self.stop.requested:
                    # Not acked: the broker hands the messages to the next consumer.
                    logger.warning("stopping with %s events unapplied (%r)", len(events), exc)
                    return ABANDONED
                delay = backoff.next()
                loud = time.monotonic() >= loud_at
                loud_at = time.monotonic() + LOUD_EVERY_SECONDS if loud else loud_at
                logger.log(
                    logging.ERROR if loud else logging.WARNING,
                    "database error applying %s events (%r); holding them and retrying in %.1f s",
                    len(events),
                    exc,
                    delay,
                )
                sleep(delay)  # connection.sleep keeps broker heartbeats flowing

    def _record(self, events: list, results: list[str]) -> None:
        """Metrics and logs of a committed batch: a line per event while the rate is low, a summary under load."""
        consumed: Counter = Counter()
        for event, outcome in zip(events, results, strict=True):
            type_label = self.metrics.type_label(event.type)
            if outcome == DUPLICATE:
                self.metrics.duplicates.labels(type=type_label).inc()
                logger.info(
                    "duplicate event %s dropped",
                    event.id,
                    extra={"event_id": event.id, "event_type": event.type},
                )
                continue
            consumed[type_label] += 1
            self.metrics.apply_age.labels(type=type_label).observe(_occurred_age(event))
        for type_label, count in consumed.items():
            self.metrics.consumed.labels(type=type_label).inc(count)
        self._log.batch(events, results)

    # -- the process ------------------------------------------------------------------------------
    def run(self) -> int:
        """Consume until SIGTERM/SIGINT; return the exit code (0 on a requested stop, 1 when unrecoverable)."""
        self.stop.install()
        broker_wait, backoff = BrokerWait(self.params), Backoff()
        logger.info("consumer starting")
        try:
            while not self.stop.requested:
                self._step(broker_wait, backoff)
        except Unrecoverable as exc:
            logger.critical("consumer stopping: %s", exc)
            return 1
        except Exception:
            logger.critical("consumer crashed", exc_info=True)
            return 1
        finally:
            self._disconnect()
            self.stop.restore()
        logger.info("consumer stopped")
        return 0

    def _step(self, broker_wait: BrokerWait, backoff: Backoff) -> None:
        try:
            if self.connection is None:
                self._connect(broker_wait)
                backoff.reset()
            # Returns as soon as a delivery is dispatched, not after the full second.
            self.connection.process_data_events(time_limit=1)
            self._drain()
            self._log.tick()
            self._maybe_beat()
            self._maybe_peek()
        except pika.exceptions.AMQPError as exc:
            if broker.is_fatal(exc):
                raise Unrecoverable(f"the broker refused us: {broker.explain(exc)}") from exc
            self._disconnect()
            delay = backoff.next()
            if isinstance(exc, pika.exceptions.ChannelClosedByBroker) and exc.reply_code == 404:
                # Not ours to declare (topology.declare_consumer): its owner's relay does, at start.
                logger.warning(
                    "waiting for exchange %s, which the other service declares when its relay first "
                    "starts; retrying in %.1f s",
                    self.topology.source_exchange,
                    delay,
                )
            elif not broker_wait.failed(exc):
                logger.warning("broker unavailable (%r); reconnecting in %.1f s", exc, delay)
            self.stop.wait(delay)

    def _connect(self, broker_wait: BrokerWait) -> None:
        with broker_wait.attempt():
            # Every address, starting one further on each time (connection.Brokers).
            self.connection = pika.BlockingConnection(self.brokers.order())
        broker_wait.succeeded()
        self.channel = self.connection.channel()
        self.topology.declare_consumer(self.channel)
        self.dead_letter_channel = self.connection.channel()
        self.dead_letter_channel.confirm_delivery()
        self.channel.basic_qos(prefetch_count=self.prefetch)
        self.channel.basic_consume(
            queue=self.topology.queue, on_message_callback=self._on_message, auto_ack=False
        )
        self.metrics.up.set(1)
        logger.info("consuming queue %s", self.topology.queue)
        self._next_beat = self._next_peek = 0.0

    def _on_message(self, channel, method, properties, body) -> None:
        self._buffer.append((method, properties, body))

    def _drain(self) -> None:
        """Handle buffered deliveries in batches until none are left (or a stop is requested)."""
        while self._buffer and not self.stop.requested:
            deadline = time.monotonic() + BATCH_WINDOW_SECONDS
            while len(self._buffer) < self.batch_size and time.monotonic() < deadline:
                before = len(self._buffer)
                self.connection.process_data_events(time_limit=0)
                if len(self._buffer) == before:
                    break
            batch, self._buffer = self._buffer[: self.batch_size], self._buffer[self.batch_size :]
            outcomes = self.handle_batch(self.channel, batch, sleep=self.connection.sleep)
            if ABANDONED in outcomes:
                return
            self._maybe_beat()

    def _maybe_beat(self) -> None:
        now = time.monotonic()
        if now < self._next_beat:
            return
        try:
            self.store.heartbeat(self.heartbeat_name)
        except Exception as exc:  # noqa: BLE001 - a missed heartbeat must never stop the consumer
            logger.warning("heartbeat not written: %r", exc)
            self.store.reset()
        self._next_beat = now + HEARTBEAT_SECONDS

    def _maybe_peek(self) -> None:
        """Every DEAD_LETTER_CHECK_SECONDS, export the dead-letter queue's depth and its oldest failure's age."""
        now = time.monotonic()
        if now < self._next_peek or self.dead_letter_channel is None:
            return
        self._next_peek = now + DEAD_LETTER_CHECK_SECONDS
        try:
            depth, age = workbench.peek(self.dead_letter_channel, self.topology)
        except pika.exceptions.ChannelClosed as exc:
            logger.warning("dead-letter queue not read for the metrics (%s)", broker.explain(exc))
            self.dead_letter_channel = None
            self._forget_dead_letter_metrics()
            return
        queue = self.topology.dead_letter_queue
        self.metrics.dead_letters.labels(queue=queue).set(depth)
        self.metrics.dead_letter_oldest_age.labels(queue=queue).set(age)

    def _forget_dead_letter_metrics(self) -> None:
        # A value we can no longer vouch for is removed, not kept: a stale 0 would hide new dead
        # letters, while no series hands the queue to the broker-side alert (README: Monitoring).
        for gauge in (self.metrics.dead_letters, self.metrics.dead_letter_oldest_age):
            try:
                gauge.remove(self.topology.dead_letter_queue)
            except KeyError:
                pass

    def _disconnect(self) -> None:
        self.metrics.up.set(0)
        self.dead_letter_channel = None
        self._forget_dead_letter_metrics()
        connection, self.connection, self.channel = self.connection, None, None
        # Unacked deliveries of a closed channel are redelivered; their tags are void.
        self._buffer = []
        if connection is not None:
            try:
                if connection.is_open:
                    connection.close()
            except Exception:  # noqa: BLE001 - it is going away either way
                logger.debug("error while closing the broker connection", exc_info=True)
