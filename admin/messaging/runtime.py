"""Pieces shared by admin's long-running messaging workers: stop signals, backoff, heartbeats."""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import threading
import time

import pika.exceptions
from django.db import InterfaceError, OperationalError
from django.db import connection as db_connection
from django.utils import timezone

from config.log import quiet_loggers

logger = logging.getLogger(__name__)

# Database errors worth retrying after reconnecting (server gone, lock wait, deadlock ...).
TRANSIENT_DB_ERRORS = (OperationalError, InterfaceError)
HEARTBEAT_INTERVAL_SECONDS = 5.0


class Backoff:
    """Exponential backoff: base, 2*base, 4*base ... capped at cap seconds."""

    def __init__(self, base: float = 0.5, cap: float = 5.0):
        self.base, self.cap, self.failures = base, cap, 0

    def next_delay(self) -> float:
        """Return the delay before the next attempt and count one more failure."""
        delay = min(self.cap, self.base * (2**self.failures))
        self.failures += 1
        return delay

    def reset(self) -> None:
        """Forget past failures after a success."""
        self.failures = 0


class StopSignal:
    """Turn SIGTERM/SIGINT into a flag plus a readable socket that wakes a select()."""

    def __init__(self):
        self.requested = False
        self._read, self._write = socket.socketpair()
        self._read.setblocking(False)
        self._write.setblocking(False)
        self._previous: dict[int, object] = {}

    def install(self) -> None:
        """Handle SIGTERM and SIGINT (only possible in the main thread)."""
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in (signal.SIGTERM, signal.SIGINT):
            self._previous[signum] = signal.signal(signum, self._handle)

    def restore(self) -> None:
        """Put back the handlers that were there before install()."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum, _frame) -> None:
        logger.info("received signal %s: finishing the current work, then exiting", signum)
        self.request()

    def request(self) -> None:
        """Ask the worker to stop (also usable from tests and other threads)."""
        self.requested = True
        try:
            self._write.send(b"x")
        except OSError:  # buffer full: a wake-up is already pending
            pass

    def fileno(self) -> int:
        """Return the socket that becomes readable when a stop is requested."""
        return self._read.fileno()

    def close(self) -> None:
        """Release the sockets."""
        self._read.close()
        self._write.close()


class BrokerWait:
    """Until the broker first answers: one INFO line, and pika's per-attempt errors kept out of the log.

    A worker started beside its broker (`make run`, compose) waits a few seconds for it on every
    start, which is not an error. A wait longer than STILL_WAITING_SECONDS is logged once at
    WARNING. After the first connection, failures are the caller's to log, and pika's own records
    come back.
    """

    STILL_WAITING_SECONDS = 30.0

    def __init__(self, params: pika.ConnectionParameters, clock=time.monotonic):
        self.where = f"{params.host}:{params.port}"
        self.clock = clock
        self.connected = False
        self._since: float | None = None
        self._warned = False

    @contextlib.contextmanager
    def attempt(self):
        """Wrap one connection attempt; pika's log records are dropped until the first success."""
        if self.connected:
            yield
            return
        with quiet_loggers("pika"):
            yield

    def failed(self, exc: BaseException) -> bool:
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


def is_fatal_broker_error(exc: BaseException) -> bool:
    """Tell broker errors that retrying cannot fix (bad credentials, topology mismatch)."""
    if isinstance(
        exc,
        pika.exceptions.ProbableAuthenticationError
        | pika.exceptions.ProbableAccessDeniedError
        | pika.exceptions.AuthenticationError,
    ):
        return True
    # 406 PRECONDITION_FAILED on declare: someone declared our queue with other arguments;
    # 403 ACCESS_REFUSED: the user may not touch the vhost/resources.
    return isinstance(exc, pika.exceptions.ChannelClosedByBroker) and exc.reply_code in (
        403,
        406,
    )


def reset_db_connection() -> None:
    """Drop the Django database connection so the next query opens a fresh one."""
    try:
        db_connection.close()
    except Exception:  # closing a broken connection may itself fail; it is gone either way
        logger.debug("error while closing a broken database connection", exc_info=True)


def beat(name: str) -> None:
    """Record that worker `name` is alive (row in worker_heartbeat)."""
    from messaging.models import WorkerHeartbeat

    WorkerHeartbeat.objects.update_or_create(name=name, defaults={"last_seen": timezone.now()})
