"""The outbox relay: publish committed outbox rows with publisher confirms (README: How an event travels).

Loop: claim up to `batch_size` pending, due rows in id order (the store locks them with FOR UPDATE
SKIP LOCKED where the database can, so several relays never send the same row), publish them
all, wait once for every confirm, then mark the confirmed rows published and give the nacked or
returned ones a later retry. Rows whose fate is unknown (the broker went away before confirming)
stay pending as they were and are sent again; consumers drop the copies by message id.

Housekeeping (heartbeat, backlog gauges, pruning of old outbox and inbox rows in small chunks)
runs in its own thread, so a long prune never holds up publishing or the broker's heartbeats.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import pika
import pika.connection
import pika.exceptions

from eventbus import connection as broker
from eventbus.connection import BrokerWait
from eventbus.metrics import RelayMetrics
from eventbus.publisher import (
    NACKED,
    AmqpPublisher,
    BrokerUnavailable,
    OutboxRow,
    Unrecoverable,
    open_wakeup_socket,
    to_message,
)
from eventbus.runtime import Backoff, StopSignal
from eventbus.topology import Topology

logger = logging.getLogger(__name__)

BATCH_SIZE = 500
POLL_SECONDS = 1.0
# Under load, batches start at most this often: the rows written meanwhile go out together, so the
# claim, the confirm wait and the marks are paid once for them all. Under load means that the last
# batch found several rows (they came faster than one batch takes); while rows come one per batch
# (a hundred a second here), each goes at once, and so does the first row after a quiet spell.
BUSY_INTERVAL_SECONDS = 0.01
HOUSEKEEPING_SECONDS = 5.0
PRUNE_SECONDS = 60.0
PRUNE_CHUNK = 1000
RETRY_BASE_SECONDS = 1.0
RETRY_CAP_SECONDS = 300.0
# Fault tests only: hold every batch this long after the broker's confirms and before its rows are
# marked sent, so that a kill lands between the two on purpose (tests/faults/test_relay.py). Read
# once at start; default 0. Never set in a deployment.
HOLD_MARK_ENV = "EVENTBUS_FAULT_HOLD_MARK_SECONDS"


def retry_delay(attempts: int) -> float:
    """Return the seconds before retrying a row that was nacked or returned `attempts` times."""
    return min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1))


@dataclass
class ClaimedBatch:
    """Rows claimed by one relay, and how to record what the broker said about them.

    mark(published, retry) marks the rows of `published` (ids) sent, and gives each row of
    `retry` (id -> (delay seconds, error)) attempts + 1, that error and a later available_at.
    """

    rows: list[OutboxRow]
    mark: Callable[[list[int], dict[int, tuple[float, str]]], None]


class OutboxStore(Protocol):
    """What the relay needs from a service's database layer (Django ORM, SQLAlchemy)."""

    #: What a failing or unreachable database raises; the relay retries after store.reset().
    database_errors: tuple[type[BaseException], ...]

    def claim(self, limit: int) -> contextlib.AbstractContextManager[ClaimedBatch]:
        """Claim up to limit due rows in id order; the claim (and its row locks) ends with the block."""

    def stats(self) -> tuple[int, dt.datetime | None]:
        """Return the number of pending rows and the creation time (aware, UTC) of the oldest."""

    def prune(self, table: str, older_than: dt.timedelta, limit: int) -> int:
        """Delete at most limit published outbox rows ("outbox") or seen inbox rows ("inbox") older than that."""

    def heartbeat(self, name: str) -> None:
        """Record that worker `name` is alive."""

    def reset(self) -> None:
        """Drop this thread's database connection after an error, so the next call opens a fresh one."""


class Housekeeper(threading.Thread):
    """Heartbeat and gauges every few seconds, pruning every minute, beside the publishing loop."""

    def __init__(
        self,
        store: OutboxStore,
        metrics: RelayMetrics,
        heartbeat_name: str,
        stop: StopSignal,
        *,
        outbox_retention: dt.timedelta,
        inbox_retention: dt.timedelta,
        clock=time.monotonic,
    ):
        super().__init__(name="relay-housekeeping", daemon=True)
        self.store, self.metrics, self.heartbeat_name, self.stop = store, metrics, heartbeat_name, stop
        self.retention = {"outbox": outbox_retention, "inbox": inbox_retention}
        self.clock = clock
        self._next_prune = 0.0

    def run(self) -> None:
        while not self.stop.requested:
            self.once()
            self.stop.wait(HOUSEKEEPING_SECONDS)

    def once(self) -> None:
        """One round: heartbeat and gauges, and a prune when one is due."""
        try:
            self.store.heartbeat(self.heartbeat_name)
            pending, oldest = self.store.stats()
            self.metrics.pending.set(pending)
            age = (dt.datetime.now(dt.UTC) - oldest).total_seconds() if oldest is not None else 0.0
            self.metrics.oldest_age.set(max(0.0, age))
            if self.clock() >= self._next_prune:
                self._next_prune = self.clock() + PRUNE_SECONDS
                self.prune()
        except self.store.database_errors as exc:
            # Best effort: the publishing loop handles a lasting outage (and readiness reports it).
            logger.warning("housekeeping skipped: database error %r", exc)
            self.store.reset()

    def prune(self) -> int:
        """Delete old rows in chunks, each its own short transaction; return how many."""
        deleted = 0
        for table, older_than in self.retention.items():
            while not self.stop.requested:
                count = self.store.prune(table, older_than, PRUNE_CHUNK)
                deleted += count
                if count < PRUNE_CHUNK:
                    break
        if deleted:
            logger.info("pruned %s old outbox and inbox rows", deleted)
        return deleted


class Relay:
    """One relay process: the publishing loop, its broker connection, and the housekeeping thread."""

    def __init__(
        self,
        store: OutboxStore,
        topology: Topology,
        metrics: RelayMetrics,
        *,
        params: pika.connection.Parameters | Sequence[pika.connection.Parameters],
        producer: str,
        heartbeat_name: str,
        wakeup_addr: str | None = None,
        batch_size: int = BATCH_SIZE,
        poll_seconds: float = POLL_SECONDS,
        busy_interval: float = BUSY_INTERVAL_SECONDS,
        outbox_retention_hours: float = 24,
        inbox_retention_hours: float = 168,
        stop: StopSignal | None = None,
        publisher_factory: Callable[..., AmqpPublisher] = AmqpPublisher,
    ):
        self.store, self.topology, self.metrics = store, topology, metrics
        self.params, self.producer, self.heartbeat_name = params, producer, heartbeat_name
        # One Brokers for every publisher of this relay: each reconnect starts one address further on.
        self.brokers = broker.Brokers.of(params)
        self.wakeup_addr, self.batch_size, self.poll_seconds = wakeup_addr, batch_size, poll_seconds
        self.busy_interval = busy_interval
        self._last_batch_at = float("-inf")  # when the last batch that found rows started
        self._busy = False
        self.retention = (
            dt.timedelta(hours=outbox_retention_hours),
            dt.timedelta(hours=inbox_retention_hours),
        )
        self.stop = stop or StopSignal()
        self.publisher_factory = publisher_factory
        self.publisher: AmqpPublisher | None = None
        self.hold_mark = float(os.environ.get(HOLD_MARK_ENV) or 0)
        self.sleep: Callable[[float], None] = time.sleep

    # -- one batch ------------------------------------------------------------------------------
    def run_once(self) -> int:
        """Publish one batch and record the outcome; return how many rows were claimed.

        Raises BrokerUnavailable after recording what the broker did confirm, so the caller
        reconnects; rows whose fate is unknown stay pending untouched.
        """
        broker_error: BrokerUnavailable | None = None
        with self.store.claim(self.batch_size) as batch:
            if not batch.rows:
                return 0
            started = time.monotonic()
            try:
                outcomes = self.publisher.publish_batch(
                    [to_message(row, self.producer) for row in batch.rows]
                )
            except BrokerUnavailable as exc:
                outcomes, broker_error = exc.confirmed, exc
            else:
                self.metrics.confirm_latency.observe(time.monotonic() - started)
            published = [
                row for row in batch.rows if row.event_id in outcomes and outcomes[row.event_id] is None
            ]
            failed = [row for row in batch.rows if outcomes.get(row.event_id) is not None]
            if broker_error is None and all(outcomes.get(row.event_id) == NACKED for row in batch.rows):
                # Every message refused: the broker, not these rows. A quorum queue whose leader died
                # nacks a channel opened before the new one was elected (RabbitMQ 3.10), and a full
                # queue nacks everything: the rows stay as they were, and the relay reconnects on
                # its own backoff (0.5 to 5 s) rather than sending each row to its own, longer one.
                broker_error = BrokerUnavailable(
                    f"the broker nacked all {len(batch.rows)} messages of the batch (a queue without a "
                    "leader, or full)"
                )
                failed = []
            if self.hold_mark and (published or failed):
                self.sleep(self.hold_mark)  # fault tests only (HOLD_MARK_ENV): a kill lands here
            batch.mark(
                [row.id for row in published],
                {row.id: (retry_delay(row.attempts + 1), outcomes[row.event_id]) for row in failed},
            )
        for event_type, count in Counter(row.event_type for row in published).items():
            self.metrics.published.labels(type=self.metrics.type_label(event_type)).inc(count)
        for row in failed:
            logger.warning(
                "outbox row %s not published (%s); retry %s in %.0f s",
                row.id,
                outcomes[row.event_id],
                row.attempts + 1,
                retry_delay(row.attempts + 1),
                extra={"event_id": row.event_id, "event_type": row.event_type},
            )
        logger.debug("published %s of %s outbox rows", len(published), len(batch.rows))
        if broker_error is not None:
            raise broker_error
        return len(batch.rows)

    # -- the process ------------------------------------------------------------------------------
    def run(self) -> int:
        """Relay until SIGTERM/SIGINT; return the exit code (0 on a requested stop, 1 when unrecoverable)."""
        self.stop.install()
        wake_socket = open_wakeup_socket(self.wakeup_addr)
        housekeeper = Housekeeper(
            self.store,
            self.metrics,
            self.heartbeat_name,
            self.stop,
            outbox_retention=self.retention[0],
            inbox_retention=self.retention[1],
        )
        housekeeper.start()
        broker_wait = BrokerWait(self.params)
        broker_backoff, db_backoff = Backoff(), Backoff()
        logger.info("outbox relay starting")
        try:
            while not self.stop.requested:
                self._step(wake_socket, broker_wait, broker_backoff, db_backoff)
        except Unrecoverable as exc:
            logger.critical("relay stopping: %s", exc)
            return 1
        except Exception:
            logger.critical("relay crashed", exc_info=True)
            return 1
        finally:
            self.stop.request()  # ends the housekeeping thread too
            self._disconnect()
            housekeeper.join(timeout=10)
            if wake_socket is not None:
                wake_socket.close()
            self.stop.restore()
        logger.info("outbox relay stopped")
        return 0

    def _step(
        self, wake_socket, broker_wait: BrokerWait, broker_backoff: Backoff, db_backoff: Backoff
    ) -> None:
        try:
            if self.publisher is None:
                publisher = self.publisher_factory(self.brokers, self.topology, wake_socket=wake_socket)
                with broker_wait.attempt():
                    publisher.connect()
                broker_wait.succeeded()
                self.publisher = publisher
                broker_backoff.reset()
                logger.info("relay connected to the broker")
            since = time.monotonic() - self._last_batch_at
            if self._busy and since < self.busy_interval:
                # Busy: let the rows of the rest of the interval join this batch.
                self.publisher.pause(self.busy_interval - since)
            self.publisher.clear_wakeups()
            started = time.monotonic()
            claimed = self.run_once()
            db_backoff.reset()
            if claimed:
                self._last_batch_at = started
            # A full batch means more rows are waiting already: no pause then either.
            self._busy = 1 < claimed < self.batch_size
            if claimed < self.batch_size:
                self.publisher.wait(self.poll_seconds, lambda: self.stop.requested)
        except BrokerUnavailable as exc:
            self._disconnect()
            delay = broker_backoff.next()
            if not broker_wait.failed(exc):
                logger.warning("broker unavailable (%s); reconnecting in %.1f s", exc, delay)
            self.stop.wait(delay)
        except self.store.database_errors as exc:
            self.store.reset()
            delay = db_backoff.next()
            logger.warning("database error in the relay (%r); retrying in %.1f s", exc, delay)
            self.stop.wait(delay)

    def _disconnect(self) -> None:
        if self.publisher is not None:
            self.publisher.close()
            self.publisher = None
