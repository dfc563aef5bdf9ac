"""Consumer of the `main` queue: validate, deduplicate, apply, commit, then acknowledge.

Per delivery: contract.parse (a broken event is rejected with requeue=False, so it goes to
main.dlq); one transaction inserts the inbox row (a duplicate id means it was applied before:
roll back and ack) and applies the event; commit; only then ack. A crash between commit and ack
redelivers the event, and the inbox row turns it into a harmless duplicate.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import pika
import pika.exceptions
import pymysql
from eventbus import connection as broker
from eventbus.connection import BrokerWait
from eventbus.runtime import Backoff, StopSignal, metrics_port
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind
from sqlalchemy import insert
from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    OperationalError,
)

from app.extensions import db
from app.messaging import contract, handlers, metrics, topology
from app.messaging.worker import CONSUMER_METRICS_PORT, DATABASE_ERRORS, beat, pika_warnings_only
from app.models import InboxEvent, utcnow

logger = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

HEARTBEAT_NAME = "main-consumer"
PREFETCH = 100
HEARTBEAT_SECONDS = 5.0
IDLE_TIMEOUT_SECONDS = 1.0

_INBOX = InboxEvent.__table__
_INSERT_INBOX = insert(_INBOX)


ACKED = "acked"
DUPLICATE = "duplicate"
DEAD_LETTERED = "dead_lettered"
ABANDONED = "abandoned"


class Unrecoverable(Exception):
    """An error retrying cannot fix; the consumer exits 1."""


def is_transient(exc: BaseException) -> bool:
    """Whether a database error is worth retrying (connection loss, lock timeout, deadlock)."""
    if isinstance(exc, OperationalError | DisconnectionError):
        return True
    if isinstance(exc, pymysql.err.OperationalError | pymysql.err.InterfaceError):
        return True  # a driver error SQLAlchemy did not wrap: the connection is gone
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


class Consumer:
    """Handle deliveries one by one on a channel; sleep is connection.sleep in production."""

    def __init__(
        self,
        channel,
        sleep: Callable[[float], None],
        should_stop: Callable[[], bool] = lambda: False,
        backoff: Backoff | None = None,
    ):
        self.channel = channel
        self.sleep = sleep
        self.should_stop = should_stop
        self.backoff_factory = lambda: backoff or Backoff(base=0.2, cap=5.0)

    def handle(self, method, properties, body: bytes) -> str:
        """Process one delivery and ack or reject it; return what happened."""
        tag = method.delivery_tag
        message_id = getattr(properties, "message_id", None)
        amqp_type = getattr(properties, "type", None)
        try:
            if not message_id:
                raise contract.InvalidEvent(
                    "message has no message_id", "missing_message_id", None, amqp_type
                )
            event = contract.parse(body, message_id, amqp_type)
        except contract.InvalidEvent as exc:
            return self._reject(
                tag,
                exc.event_id or message_id,
                exc.event_type or amqp_type,
                exc.code,
                exc.reason,
            )

        headers = getattr(properties, "headers", None) or {}
        parent = propagate.extract({k: str(v) for k, v in headers.items()})
        with tracer.start_as_current_span(
            f"{event.type} process",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "rabbitmq",
                "messaging.operation": "process",
                "messaging.destination.name": topology.QUEUE,
                "messaging.message.id": event.id,
                "messaging.rabbitmq.destination.routing_key": method.routing_key or "",
            },
        ):
            return self._process(tag, event)

    def _process(self, tag, event: contract.Event) -> str:
        log_extra = {"event_id": event.id, "event_type": event.type}
        backoff = self.backoff_factory()
        while True:
            try:
                outcome = self._apply_once(event)
                break
            except DATABASE_ERRORS as exc:
                self._discard_session()
                if not is_transient(exc):
                    logger.exception("applying event failed", extra=log_extra)
                    return self._reject(tag, event.id, event.type, "handler_error", repr(exc))
                if self.should_stop():
                    # Not acked: the broker redelivers it to the next consumer.
                    logger.warning("stopping while retrying event", extra=log_extra)
                    return ABANDONED
                delay = backoff.next()
                logger.warning(
                    "database unavailable (%s); retrying event in %.1f s",
                    exc.__class__.__name__,
                    delay,
                    extra=log_extra,
                )
                # In place, never requeue: a requeue would spend the queue's delivery limit.
                self.sleep(delay)
            except Exception as exc:
                self._discard_session(dispose_pool=False)
                logger.exception("applying event failed", extra=log_extra)
                return self._reject(tag, event.id, event.type, "handler_error", repr(exc))

        # Only now, after the commit, is the event safe to acknowledge.
        self.channel.basic_ack(delivery_tag=tag)
        type_label = metrics.CONSUMER.type_label(event.type)
        if outcome == DUPLICATE:
            metrics.CONSUMER.duplicates.labels(type=type_label).inc()
            logger.info("duplicate event skipped", extra=log_extra)
        else:
            metrics.CONSUMER.consumed.labels(type=type_label).inc()
            age = (utcnow() - event.occurred_at.replace(tzinfo=None)).total_seconds()
            metrics.CONSUMER.apply_age.labels(type=type_label).observe(max(0.0, age))
            logger.info("event %s", outcome, extra=log_extra)
        return DUPLICATE if outcome == DUPLICATE else ACKED

    def _apply_once(self, event: contract.Event) -> str:
        """Insert the inbox row and apply the event in one transaction; commit."""
        session = db.session
        try:
            try:
                session.execute(
                    _INSERT_INBOX,
                    {"message_id": event.id, "event_type": event.type, "received_at": utcnow()},
                )
            except IntegrityError:
                session.rollback()
                return DUPLICATE
            outcome = handlers.apply(session, event)
            session.commit()
        except BaseException:
            session.rollback()
            raise
        return outcome

    def _discard_session(self, dispose_pool: bool = True) -> None:
        try:
            db.session.rollback()
        except DATABASE_ERRORS:
            pass
        try:
            db.session.remove()
        except DATABASE_ERRORS:
            logger.warning("discarding the broken database session failed", exc_info=True)
        if dispose_pool:
            # A driver error SQLAlchemy did not wrap leaves a dead connection in the pool: drop it all.
            db.engine.dispose()

    def _reject(self, tag, event_id, event_type, code: str, reason: str) -> str:
        # requeue=False dead-letters it to main.dlx -> main.dlq.
        self.channel.basic_nack(delivery_tag=tag, requeue=False)
        metrics.CONSUMER.dead_lettered.labels(type=metrics.CONSUMER.type_label(event_type), reason=code).inc()
        logger.warning(
            "event rejected to the dead-letter queue: %s",
            reason,
            extra={"event_id": event_id, "event_type": event_type, "reason": code},
        )
        return DEAD_LETTERED


def _consume_connection(app, params, stop: StopSignal, broker_wait: BrokerWait) -> None:
    """Consume on one connection until stop or broker loss (raises pika errors)."""
    with broker_wait.attempt():
        conn = pika.BlockingConnection(params)
    broker_wait.succeeded()
    try:
        channel = conn.channel()
        try:
            topology.declare_consumer(channel)
        except pika.exceptions.ChannelClosedByBroker as exc:
            if broker.is_fatal(exc):
                raise Unrecoverable(f"declaring topology failed: {exc!r}") from exc
            raise
        channel.basic_qos(prefetch_count=PREFETCH)
        consumer = Consumer(channel, conn.sleep, lambda: stop.requested)
        metrics.CONSUMER.up.set(1)
        logger.info("consuming queue %s", topology.QUEUE)
        last_beat = float("-inf")
        for method, properties, body in channel.consume(
            topology.QUEUE, auto_ack=False, inactivity_timeout=IDLE_TIMEOUT_SECONDS
        ):
            if method is not None:
                consumer.handle(method, properties, body)
            now = time.monotonic()
            if now - last_beat >= HEARTBEAT_SECONDS:
                last_beat = now
                beat(HEARTBEAT_NAME)
            if stop.requested:
                break
        metrics.CONSUMER.up.set(0)
        # Unacked prefetched messages go back to the queue when the channel closes.
        channel.cancel()
        channel.close()
    finally:
        metrics.CONSUMER.up.set(0)
        if conn.is_open:
            try:
                conn.close()
            except pika.exceptions.AMQPError:
                pass


def run_consumer(app) -> None:
    """Consume the `main` queue until SIGTERM (exit 0); exit 1 on an unrecoverable error."""
    stop = StopSignal()
    stop.install()
    pika_warnings_only()
    metrics.serve(metrics_port(CONSUMER_METRICS_PORT))
    params = topology.connection_parameters(
        app.config["RABBITMQ_URL"],
        app.config.get("RABBITMQ_CA_FILE"),
        client_name="main-consumer",
    )
    backoff = Backoff(base=0.5, cap=5.0)
    broker_wait = BrokerWait(params)
    logger.info("consumer starting")
    try:
        with app.app_context():
            while not stop.requested:
                try:
                    _consume_connection(app, params, stop, broker_wait)
                    backoff.reset()
                except pika.exceptions.AMQPError as exc:
                    if broker.is_fatal(exc):
                        raise Unrecoverable(f"the broker refused us: {exc!r}") from exc
                    delay = backoff.next()
                    if not broker_wait.failed(exc):
                        logger.warning("broker unavailable (%r); reconnecting in %.1f s", exc, delay)
                    # No heartbeat while disconnected: readiness should see the consumer down.
                    stop.wait(delay)
    except Unrecoverable as exc:
        logger.critical("consumer stopping: %s", exc)
        raise SystemExit(1) from exc
    except Exception as exc:
        logger.critical("consumer crashed", exc_info=True)
        raise SystemExit(1) from exc
    logger.info("consumer stopped")
