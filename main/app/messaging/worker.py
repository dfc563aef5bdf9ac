"""Plumbing shared by the long-running messaging processes (consumer, relay)."""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import threading
import time

import pymysql
from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from app.extensions import db
from app.logging_config import quiet_loggers
from app.models import WorkerHeartbeat, utcnow

logger = logging.getLogger(__name__)

# What a database outage can raise. SQLAlchemy wraps most driver errors, but not all: a
# connection lost while the pool resets it on check-in (or while setting the isolation level on
# check-out) surfaces as the driver's own error.
DATABASE_ERRORS = (SQLAlchemyError, pymysql.err.Error)

# Development defaults (README: What `make run` starts); METRICS_PORT overrides them, 0 = off.
CONSUMER_METRICS_PORT = 9811
RELAY_METRICS_PORT = 9812


def quiet_pika() -> None:
    """Keep pika's per-connection INFO chatter out of the worker logs."""
    logging.getLogger("pika").setLevel(logging.WARNING)


def metrics_port(default: int) -> int:
    """Return METRICS_PORT from the environment, or this process kind's default when unset."""
    value = os.environ.get("METRICS_PORT", "").strip()
    return int(value) if value else default


class Backoff:
    """Exponential backoff with jitter: base, 2*base, ... capped at cap seconds."""

    def __init__(self, base: float = 0.5, cap: float = 5.0):
        self.base = base
        self.cap = cap
        self.failures = 0

    def next(self) -> float:
        """Return the next delay and count one more failure."""
        delay = min(self.cap, self.base * (2**self.failures))
        self.failures += 1
        # Jitter so several workers do not hammer a recovering broker in step.
        return delay * random.uniform(0.8, 1.0)

    def reset(self) -> None:
        """Start again from the base delay."""
        self.failures = 0


class BrokerWait:
    """Until the broker first answers: one INFO line, and pika's per-attempt errors kept out of the log.

    A worker started beside its broker (`make run`, compose) waits a few seconds for it on every
    start, which is not an error. A wait longer than STILL_WAITING_SECONDS is logged once at
    WARNING. After the first connection, failures are the caller's to log, and pika's own records
    come back.
    """

    STILL_WAITING_SECONDS = 30.0

    def __init__(self, params, clock=time.monotonic):
        self.where = f"{params.host}:{params.port}"
        self.clock = clock
        self.connected = False
        self._since = None
        self._warned = False

    @contextlib.contextmanager
    def attempt(self):
        """Wrap one connection attempt; pika's log records are dropped until the first success."""
        if self.connected:
            yield
            return
        with quiet_loggers("pika"):
            yield

    def failed(self, exc) -> bool:
        """Note a failed attempt; return False once connected (the caller then logs it)."""
        if self.connected:
            return False
        now = self.clock()
        if self._since is None:
            self._since = now
            logger.info("waiting for the broker at %s", self.where)
        elif not self._warned and now - self._since >= self.STILL_WAITING_SECONDS:
            self._warned = True
            logger.warning(
                "still waiting for the broker at %s after %.0f s (%r)", self.where, now - self._since, exc
            )
        return True

    def succeeded(self) -> None:
        """Note a connection; say how long the wait was, if there was one."""
        if not self.connected and self._since is not None:
            logger.info("connected to the broker at %s after %.1f s", self.where, self.clock() - self._since)
        self.connected = True


class StopFlag:
    """Set by SIGTERM/SIGINT; the loops check it between units of work."""

    def __init__(self):
        self._event = threading.Event()

    def set(self) -> None:
        """Ask the loops to stop."""
        self._event.set()

    def is_set(self) -> bool:
        """Return whether a stop was asked for."""
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to seconds, returning early (True) when a stop is asked for."""
        return self._event.wait(seconds)

    def install(self) -> None:
        """Set this flag on SIGTERM and SIGINT (main thread only)."""

        def handler(signum, _frame):
            logger.info("received signal %s; finishing current work", signum)
            self.set()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)


def beat(name: str) -> None:
    """Record that worker `name` is alive now (own short transaction; errors are logged only)."""
    now = utcnow()
    table = WorkerHeartbeat.__table__
    try:
        with db.engine.begin() as conn:
            result = conn.execute(update(table).where(table.c.name == name).values(last_seen=now))
            if result.rowcount == 0:
                try:
                    with conn.begin_nested():
                        conn.execute(insert(table).values(name=name, last_seen=now))
                except IntegrityError:
                    # Another process with the same name inserted first; its beat is as good.
                    pass
    except Exception:  # a missed heartbeat must never stop the worker
        logger.warning("heartbeat %s failed", name, exc_info=True)
