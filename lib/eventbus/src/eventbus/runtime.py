"""What every long-running messaging worker needs: backoff, a stop signal, its metrics port."""

from __future__ import annotations

import logging
import os
import random
import select
import signal
import socket
import threading

logger = logging.getLogger(__name__)


class Backoff:
    """Exponential backoff with jitter: base, 2*base, 4*base ... capped at cap seconds.

    The jitter (the delay times 0.8 to 1.0) keeps several workers from hammering a recovering
    broker or database in step.
    """

    def __init__(self, base: float = 0.5, cap: float = 5.0, *, jitter: bool = True):
        self.base, self.cap, self.jitter, self.failures = base, cap, jitter, 0

    def next(self) -> float:
        """Return the delay before the next attempt and count one more failure."""
        delay = min(self.cap, self.base * 2 ** min(self.failures, 32))
        self.failures += 1
        return delay * random.uniform(0.8, 1.0) if self.jitter else delay

    def reset(self) -> None:
        """Forget past failures after a success."""
        self.failures = 0


class StopSignal:
    """SIGTERM/SIGINT as a flag, plus a socket that becomes readable, so a select() wakes up."""

    def __init__(self):
        self._event = threading.Event()
        self._read, self._write = socket.socketpair()
        self._read.setblocking(False)
        self._write.setblocking(False)
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        """Whether a stop was asked for."""
        return self._event.is_set()

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
        """Ask the worker to stop (also from tests and other threads)."""
        self._event.set()
        try:
            self._write.send(b"x")
        except OSError:  # buffer full: a wake-up is already pending
            pass

    def wait(self, seconds: float, *also) -> bool:
        """Sleep up to seconds; return early, True, on a stop (or when a socket in `also` is readable)."""
        if self.requested:
            return True
        select.select([self, *also], [], [], max(0.0, seconds))
        return self.requested

    def fileno(self) -> int:
        """Return the socket that becomes readable when a stop is requested."""
        return self._read.fileno()

    def close(self) -> None:
        """Release the sockets."""
        self._read.close()
        self._write.close()


def metrics_port(default: int) -> int:
    """Return METRICS_PORT from the environment (0 = off), or this process kind's default when unset."""
    value = os.environ.get("METRICS_PORT", "").strip()
    return int(value) if value else default


# Every MySQL socket read and write of a service gives up after this many seconds (PyMySQL's
# read_timeout and write_timeout), so a half-open connection to a database that went away fails
# fast instead of blocking a worker past its broker heartbeat (30 s). DATABASE_TIMEOUT_SECONDS
# raises it for one-off statements that legitimately run longer, such as a migration of a big table.
DATABASE_TIMEOUT_SECONDS = 20
DATABASE_CONNECT_TIMEOUT_SECONDS = 10


def database_timeouts(environ=None) -> dict[str, int]:
    """Return PyMySQL's connect/read/write timeouts, from DATABASE_TIMEOUT_SECONDS (ValueError when bad)."""
    value = (os.environ if environ is None else environ).get("DATABASE_TIMEOUT_SECONDS", "")
    try:
        seconds = int(value) if value.strip() else DATABASE_TIMEOUT_SECONDS
    except ValueError:
        raise ValueError(f"DATABASE_TIMEOUT_SECONDS must be a whole number of seconds: {value!r}") from None
    if seconds < 1:
        raise ValueError(f"DATABASE_TIMEOUT_SECONDS must be at least 1: {value!r}")
    return {
        "connect_timeout": DATABASE_CONNECT_TIMEOUT_SECONDS,
        "read_timeout": seconds,
        "write_timeout": seconds,
    }


# Production refuses these (README: Security): values copied from .env.example or a development
# default, anywhere in a secret or in a URL that carries one, and signing keys too short to guess.
PLACEHOLDER_MARKERS = ("change-me", "changeme", "insecure-dev", "django-insecure")
MIN_SECRET_KEY_LENGTH = 50


def weak_secret_problems(values, signing_keys=("SECRET_KEY",)) -> list[str]:
    """Return one message per weak setting in values (name -> value); empty when all are fit for production.

    A value holding a placeholder marker is refused whatever its kind; a signing key must also
    have at least MIN_SECRET_KEY_LENGTH characters, five of them different (Django's own rule).
    The messages name the variable, never its value.
    """
    problems = []
    for name, value in values.items():
        if not value:
            continue
        lowered = value.lower()
        marker = next((m for m in PLACEHOLDER_MARKERS if m in lowered), None)
        if marker:
            problems.append(f"{name} holds the placeholder {marker!r}: set a real secret")
        elif name in signing_keys and (len(value) < MIN_SECRET_KEY_LENGTH or len(set(value)) < 5):
            problems.append(
                f"{name} is too weak: use at least {MIN_SECRET_KEY_LENGTH} random characters "
                "(python3 -c 'import secrets; print(secrets.token_urlsafe(50))')"
            )
    return problems
