"""Consumer of main's events: parse, dedupe through the inbox, apply, commit, then ack.

Per delivery: a message that breaks the contract goes to the dead-letter queue at once
(basic_nack requeue=False); otherwise the inbox row and the change commit in one transaction and
only then is the message acked, so a crash in between redelivers it and the inbox drops the copy.
Transient database errors are retried in place (never requeued into the delivery limit).
"""

from __future__ import annotations

import logging
import select
import time
from collections.abc import Callable

import pika
import pika.exceptions
from django.db import IntegrityError, NotSupportedError, ProgrammingError, transaction
from django.utils import timezone
from eventbus import connection as broker
from eventbus.connection import BrokerWait
from eventbus.runtime import Backoff, StopSignal
from opentelemetry import propagate, trace
from prometheus_client import Counter, Gauge, Histogram

from messaging import contract, handlers, runtime, topology
from messaging.contract import Event, InvalidEvent

logger = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

HEARTBEAT_NAME = "admin-consumer"
PREFETCH_COUNT = 500
BATCH_SIZE = 500
# A batch closes when no more deliveries are immediately available, at BATCH_SIZE, or after
# this long: a lone event is never held back waiting for company.
BATCH_WINDOW_SECONDS = 0.005
DUPLICATE = "duplicate"
DEAD_LETTERED = "dead_lettered"
ABANDONED = "abandoned"

# The same metric names in both services: the dashboards and alert rules query them by name.
EVENTS_CONSUMED = Counter("events_consumed", "Events applied and acked", ["type"])
EVENTS_DUPLICATES = Counter(
    "events_duplicates",
    "Deliveries dropped because the inbox already had them",
    ["type"],
)
EVENTS_DEAD_LETTERED = Counter(
    "events_dead_lettered", "Deliveries rejected to the dead-letter queue", ["type", "reason"]
)
EVENT_APPLY_AGE = Histogram(
    "event_apply_age_seconds",
    "Seconds from occurred_at to apply",
    ["type"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600),  # 2 s: the freshness SLO
)
CONSUMER_UP = Gauge("consumer_up", "1 while the consumer is connected and consuming")
DEAD_LETTER_REASONS = (*contract.REJECT_CODES, "handler_error")


def type_label(event_type: object) -> str:
    """Return event_type when admin consumes it, else "unknown" (keeps label cardinality bounded)."""
    return event_type if isinstance(event_type, str) and event_type in contract.CONSUMED else "unknown"


# Every label set that can occur exists from the start, so a healthy system shows 0, not "No data".
for _type in contract.CONSUMED:
    EVENTS_CONSUMED.labels(type=_type)
    EVENTS_DUPLICATES.labels(type=_type)
    EVENT_APPLY_AGE.labels(type=_type)
for _type in (*contract.CONSUMED, "unknown"):
    for _reason in DEAD_LETTER_REASONS:
        EVENTS_DEAD_LETTERED.labels(type=_type, reason=_reason)


def apply_event(event: Event) -> str:
    """Record the event in the inbox and apply it in one transaction; return the outcome."""
    from messaging.models import InboxEvent

    with transaction.atomic():
        try:
            # Savepoint: a duplicate only undoes this insert, and no handler error is mistaken
            # for a duplicate.
            with transaction.atomic():
                InboxEvent.objects.create(message_id=event.id, event_type=event.type)
        except IntegrityError:
            return DUPLICATE
        return handlers.handle(event)


def _insert_inbox(events: list[Event]) -> None:
    """Insert the inbox rows of distinct events with one multi-row INSERT (IntegrityError on a taken id)."""
    from django.db import connection

    from messaging.models import InboxEvent

    meta = InboxEvent._meta
    qn = connection.ops.quote_name
    received_at = meta.get_field("received_at").get_db_prep_value(timezone.now(), connection)
    # Identifiers come from the model, every value is a parameter.
    sql = (
        f"INSERT INTO {qn(meta.db_table)} ({qn('message_id')}, {qn('event_type')}, {qn('received_at')}) "  # noqa: S608
        "VALUES (%s, %s, %s)"
    )
    with connection.cursor() as cursor:
        # PyMySQL turns this into one multi-row INSERT; SQLite runs it as one prepared statement.
        cursor.executemany(sql, [(e.id, e.type, received_at) for e in events])


def _already_seen(ids: list[str]) -> set[str]:
    """Return which of these message ids the inbox already holds."""
    from messaging.models import InboxEvent

    return set(InboxEvent.objects.filter(message_id__in=ids).values_list("message_id", flat=True))


def apply_batch(events: list[Event]) -> list[str]:
    """Record a batch in the inbox and apply it in ONE transaction; return outcomes in order.

    Duplicates (already in the inbox, or repeated inside the batch) are skipped. A concurrent
    consumer inserting the same id meanwhile makes the insert raise IntegrityError: the inbox
    primary key stays the final dedupe guard and the caller falls back to one by one.
    """
    with transaction.atomic():
        ids = list({event.id for event in events})
        seen = _already_seen(ids)
        fresh: list[Event] = []
        for event in events:
            if event.id not in seen:
                seen.add(event.id)
                fresh.append(event)
        if fresh:
            _insert_inbox(fresh)
        applied = handlers.handle_batch(fresh)
    outcomes, first = [], {id(e) for e in fresh}
    for event in events:
        outcomes.append(applied[event.id] if id(event) in first else DUPLICATE)
    return outcomes


def _log_extra(event_id, event_type, **more) -> dict:
    return {"event_id": event_id, "event_type": event_type, **more}


def _parse(channel, method, properties, body: bytes) -> Event | None:
    """Parse a delivery; dead-letter it (nack, no requeue) and return None when it is poison."""
    try:
        if not properties.message_id:
            raise InvalidEvent("message has no message_id", "missing_message_id")
        return contract.parse(body, properties.message_id, properties.type)
    except InvalidEvent as exc:
        event_id = exc.event_id or properties.message_id
        event_type = exc.event_type or properties.type
        logger.warning(
            "dead-lettering event %s (%s): %s",
            event_id,
            event_type,
            exc.reason,
            extra=_log_extra(event_id, event_type, reason=exc.code),
        )
        channel.basic_nack(delivery_tag=method.delivery_tag, requeue=False)
        EVENTS_DEAD_LETTERED.labels(type=type_label(event_type), reason=exc.code).inc()
        return None


def _span_attributes(method, event: Event) -> dict:
    return {
        "messaging.system": "rabbitmq",
        "messaging.operation.type": "process",
        "messaging.destination.name": topology.QUEUE,
        "messaging.message.id": event.id,
        "messaging.rabbitmq.destination.routing_key": method.routing_key or "",
        "event.type": event.type,
    }


def _record(event: Event, outcome: str) -> None:
    if outcome == DUPLICATE:
        EVENTS_DUPLICATES.labels(type=event.type).inc()
        logger.info("duplicate event %s dropped", event.id, extra=_log_extra(event.id, event.type))
        return
    EVENTS_CONSUMED.labels(type=event.type).inc()
    age = (timezone.now() - event.occurred_at).total_seconds()
    EVENT_APPLY_AGE.labels(type=event.type).observe(max(0.0, age))
    logger.info("event %s %s", event.id, outcome, extra=_log_extra(event.id, event.type))


def handle_delivery(
    channel,
    method,
    properties,
    body: bytes,
    *,
    sleep: Callable[[float], None] = time.sleep,
    stopping: Callable[[], bool] = lambda: False,
) -> str:
    """Process one delivery and ack/nack it; return the outcome (for logs and tests)."""
    event = _parse(channel, method, properties, body)
    if event is None:
        return DEAD_LETTERED
    return _apply_one(channel, method, properties, event, sleep=sleep, stopping=stopping)


def _apply_one(channel, method, properties, event: Event, *, sleep, stopping) -> str:
    tag = method.delivery_tag
    parent = propagate.extract(properties.headers or {})
    with tracer.start_as_current_span(
        f"{topology.QUEUE} process",
        context=parent,
        kind=trace.SpanKind.CONSUMER,
        attributes=_span_attributes(method, event),
    ):
        backoff = Backoff(0.5, 5.0)
        while True:
            try:
                outcome = apply_event(event)
                break
            except runtime.TRANSIENT_DB_ERRORS as exc:
                if stopping():
                    # Not acked: the broker hands the message to the next consumer.
                    logger.warning(
                        "stopping with event %s unapplied (database error %r)",
                        event.id,
                        exc,
                        extra=_log_extra(event.id, event.type),
                    )
                    return ABANDONED
                delay = backoff.next()
                logger.warning(
                    "database error applying event %s (%r); retrying in %.1fs",
                    event.id,
                    exc,
                    delay,
                    extra=_log_extra(event.id, event.type),
                )
                runtime.reset_db_connection()
                sleep(delay)  # connection.sleep keeps broker heartbeats flowing
            except (ProgrammingError, NotSupportedError):
                # Schema trouble (e.g. migrations not run) is not this message's fault: exit
                # non-zero unacked instead of dead-lettering every message.
                raise
            except Exception:
                # A handler bug or a permanent database error: park the message in the DLQ
                # (redrive after the fix) instead of acking it away or crash-looping on it.
                logger.exception(
                    "handler failed for event %s; dead-lettering it",
                    event.id,
                    extra=_log_extra(event.id, event.type, reason="handler_error"),
                )
                channel.basic_nack(delivery_tag=tag, requeue=False)
                EVENTS_DEAD_LETTERED.labels(type=type_label(event.type), reason="handler_error").inc()
                return DEAD_LETTERED

        # Committed above: only now tell the broker it may forget the message.
        channel.basic_ack(delivery_tag=tag)
    _record(event, outcome)
    return outcome


def handle_batch(
    channel,
    deliveries: list[tuple],
    *,
    sleep: Callable[[float], None] = time.sleep,
    stopping: Callable[[], bool] = lambda: False,
    ack_multiple: bool = True,
) -> list[str]:
    """Process buffered deliveries as one transaction, then ack them; return outcomes in order.

    Poison messages are dead-lettered one by one first. The rest commit together (inbox rows +
    set-based apply) and are acked only after the commit. A non-transient failure of the batch
    falls back to one by one, so a bad event goes to the DLQ alone. ack_multiple: every earlier
    delivery on this channel is settled, so one basic_ack(last, multiple=True) covers the batch.
    """
    outcomes: dict[int, str] = {}
    parsed: list[tuple] = []
    for method, properties, body in deliveries:
        event = _parse(channel, method, properties, body)
        if event is None:
            outcomes[method.delivery_tag] = DEAD_LETTERED
        else:
            parsed.append((method, properties, event))
    if parsed:
        results = _apply_parsed(channel, parsed, sleep=sleep, stopping=stopping, ack_multiple=ack_multiple)
        for (method, _, _), outcome in zip(parsed, results, strict=True):
            outcomes[method.delivery_tag] = outcome
    return [outcomes[method.delivery_tag] for method, _, _ in deliveries]


def _apply_parsed(channel, parsed, *, sleep, stopping, ack_multiple) -> list[str]:
    events = [event for _, _, event in parsed]
    common = {
        "messaging.system": "rabbitmq",
        "messaging.operation.type": "process",
        "messaging.destination.name": topology.QUEUE,
        "messaging.batch.message_count": len(parsed),
    }
    # One consumer span per event, child of its producer's trace, covering the batch's apply.
    spans = [
        tracer.start_span(
            f"{topology.QUEUE} process",
            context=propagate.extract(properties.headers or {}),
            kind=trace.SpanKind.CONSUMER,
            attributes={**common, "messaging.message.id": event.id, "event.type": event.type},
        )
        for method, properties, event in parsed
    ]
    backoff = Backoff(0.5, 5.0)
    results: list[str] | None = None
    try:
        while True:
            try:
                results = apply_batch(events)
                break
            except runtime.TRANSIENT_DB_ERRORS as exc:
                if stopping():
                    # Not acked: the broker hands the messages to the next consumer.
                    logger.warning(
                        "stopping with a batch of %s events unapplied (database error %r)",
                        len(events),
                        exc,
                    )
                    return [ABANDONED] * len(events)
                delay = backoff.next()
                logger.warning(
                    "database error applying a batch of %s events (%r); retrying in %.1fs",
                    len(events),
                    exc,
                    delay,
                )
                runtime.reset_db_connection()
                sleep(delay)  # connection.sleep keeps broker heartbeats flowing
            except (ProgrammingError, NotSupportedError):
                raise  # schema trouble: exit unacked (see _apply_one)
            except Exception as exc:
                # IntegrityError (a concurrent consumer took an id) or a bad event: nothing was
                # committed; apply one by one so only the culprit is dead-lettered.
                logger.warning("batch of %s events failed (%r); applying them one by one", len(events), exc)
                break
    finally:
        for span in spans:
            span.end()
    if results is None:
        return [
            _apply_one(channel, method, properties, event, sleep=sleep, stopping=stopping)
            for method, properties, event in parsed
        ]
    # Committed above: only now tell the broker it may forget the messages.
    tags = [method.delivery_tag for method, _, _ in parsed]
    if ack_multiple and len(tags) > 1:
        channel.basic_ack(delivery_tag=max(tags), multiple=True)
    else:
        for tag in tags:
            channel.basic_ack(delivery_tag=tag)
    _record_batch(events, results)
    return results


def _record_batch(events: list[Event], results: list[str]) -> None:
    """Update metrics and logs for a committed batch (counters once per type, not per event)."""
    consumed: dict[str, int] = {}
    duplicates: dict[str, int] = {}
    now = timezone.now()
    debug = logger.isEnabledFor(logging.DEBUG)
    ages: dict[str, list[float]] = {}
    for event, outcome in zip(events, results, strict=True):
        if outcome == DUPLICATE:
            duplicates[event.type] = duplicates.get(event.type, 0) + 1
            logger.info("duplicate event %s dropped", event.id, extra=_log_extra(event.id, event.type))
            continue
        consumed[event.type] = consumed.get(event.type, 0) + 1
        ages.setdefault(event.type, []).append(max(0.0, (now - event.occurred_at).total_seconds()))
        if debug:
            # Per-event lines in a batch cost more than the apply itself; keep them at DEBUG.
            logger.debug("event %s %s", event.id, outcome, extra=_log_extra(event.id, event.type))
    for event_type, count in consumed.items():
        EVENTS_CONSUMED.labels(type=event_type).inc(count)
        histogram = EVENT_APPLY_AGE.labels(type=event_type)
        for age in ages[event_type]:
            histogram.observe(age)
    for event_type, count in duplicates.items():
        EVENTS_DUPLICATES.labels(type=event_type).inc(count)
    logger.info("applied a batch of %s events (%s duplicates)", len(events), sum(duplicates.values()))


class Consumer:
    """The long-running consumer process: connects, consumes, reconnects, beats."""

    def __init__(
        self,
        *,
        params: pika.ConnectionParameters | None = None,
        stop: StopSignal | None = None,
    ):
        self.params = params or topology.connection_parameters(client_name="admin-consumer")
        self.broker_wait = BrokerWait(self.params)
        self.stop = stop or StopSignal()
        self.connection: pika.BlockingConnection | None = None
        self.channel = None
        self._backoff = Backoff(0.5, 5.0)
        self._next_beat = 0.0
        # Deliveries handed over by pika and not yet processed, in delivery-tag order.
        self._buffer: list[tuple] = []

    def run(self) -> int:
        """Consume until stopped; return the process exit code (0 on a requested stop)."""
        self.stop.install()
        try:
            while not self.stop.requested:
                self._step()
            logger.info("consumer stopped")
            return 0
        except Exception:
            logger.exception("consumer failed with an unrecoverable error")
            return 1
        finally:
            self._disconnect()
            self.stop.restore()

    def _step(self) -> None:
        if self.connection is None:
            try:
                self._connect()
            except pika.exceptions.AMQPError as exc:
                if broker.is_fatal(exc):
                    raise
                self._disconnect()
                delay = self._backoff.next()
                if not self.broker_wait.failed(exc):
                    logger.warning("broker unavailable (%r); retrying in %.1fs", exc, delay)
                select.select([self.stop], [], [], delay)
                return
        try:
            # Returns as soon as a delivery is dispatched, not after the full second.
            self.connection.process_data_events(time_limit=1)
            self._drain()
        except pika.exceptions.AMQPError as exc:
            if broker.is_fatal(exc):
                raise
            logger.warning("lost the broker (%r); reconnecting", exc)
            self._disconnect()
            return
        self._maybe_beat()

    def _connect(self) -> None:
        with self.broker_wait.attempt():
            self.connection = pika.BlockingConnection(self.params)
        self.broker_wait.succeeded()
        self.channel = self.connection.channel()
        topology.declare_consumer(self.channel)
        self.channel.basic_qos(prefetch_count=PREFETCH_COUNT)
        self.channel.basic_consume(queue=topology.QUEUE, on_message_callback=self._on_message, auto_ack=False)
        self._backoff.reset()
        CONSUMER_UP.set(1)
        logger.info("consuming from queue %s", topology.QUEUE)
        self._next_beat = 0.0
        self._maybe_beat()

    def _on_message(self, channel, method, properties, body) -> None:
        self._buffer.append((method, properties, body))

    def _drain(self) -> None:
        """Process buffered deliveries in batches until none are left (or a stop is requested)."""
        while self._buffer and not self.stop.requested:
            deadline = time.monotonic() + BATCH_WINDOW_SECONDS
            # Collect what the broker already pushed (prefetch); never wait long for more.
            while len(self._buffer) < BATCH_SIZE and time.monotonic() < deadline:
                before = len(self._buffer)
                self.connection.process_data_events(time_limit=0)
                if len(self._buffer) == before:
                    break
            batch, self._buffer = self._buffer[:BATCH_SIZE], self._buffer[BATCH_SIZE:]
            # Every earlier tag on this channel is settled (batches run in order, and a stop
            # leaves the loop), so the batch may be acked with one multiple=True ack.
            outcomes = handle_batch(
                self.channel,
                batch,
                sleep=self.connection.sleep,
                stopping=lambda: self.stop.requested,
            )
            if ABANDONED in outcomes:
                return
            self._maybe_beat()

    def _maybe_beat(self) -> None:
        now = time.monotonic()
        if now < self._next_beat:
            return
        try:
            runtime.beat(HEARTBEAT_NAME)
        except runtime.TRANSIENT_DB_ERRORS as exc:
            logger.warning("heartbeat not written: database error %r", exc)
            runtime.reset_db_connection()
        self._next_beat = now + runtime.HEARTBEAT_INTERVAL_SECONDS

    def _disconnect(self) -> None:
        CONSUMER_UP.set(0)
        connection, self.connection, self.channel = self.connection, None, None
        # Unacked deliveries of a closed channel are redelivered; their tags are void.
        self._buffer = []
        if connection is None:
            return
        try:
            if connection.is_open:
                # Unacked deliveries go back to the queue when the channel closes.
                connection.close()
        except Exception:
            logger.debug("error while closing the broker connection", exc_info=True)
