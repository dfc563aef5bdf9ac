"""Broker connections: parameters from a URL, the fatal-error rule, waiting for a starting broker."""

from __future__ import annotations

import contextlib
import logging
import ssl
import threading
import time

import pika
import pika.exceptions

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 30
BLOCKED_CONNECTION_TIMEOUT_SECONDS = 60
SOCKET_TIMEOUT_SECONDS = 10


def parameters(
    url: str,
    ca_file: str | None = None,
    *,
    client_name: str | None = None,
    heartbeat: int = HEARTBEAT_SECONDS,
    blocked_connection_timeout: float = BLOCKED_CONNECTION_TIMEOUT_SECONDS,
    socket_timeout: float = SOCKET_TIMEOUT_SECONDS,
) -> pika.URLParameters:
    """Build pika parameters from RABBITMQ_URL; amqps:// verifies the certificate and host name."""
    params = pika.URLParameters(url)
    params.heartbeat = heartbeat
    params.blocked_connection_timeout = blocked_connection_timeout
    # One attempt: the workers' own loops retry with backoff, and pika's retries would hide an
    # outage from them.
    params.connection_attempts = 1
    params.socket_timeout = socket_timeout
    if client_name:
        params.client_properties = {"connection_name": client_name}
    if url.lower().startswith("amqps://"):
        # create_default_context: CERT_REQUIRED and check_hostname=True; a private CA via ca_file.
        context = ssl.create_default_context(cafile=ca_file or None)
        params.ssl_options = pika.SSLOptions(context, server_hostname=params.host)
    return params


def where(params: pika.ConnectionParameters) -> str:
    """Return host:port of the broker, for logs (never the credentials)."""
    return f"{params.host}:{params.port}"


# ---------------------------------------------------------------------------------------------
# Which broker errors retrying cannot fix
# ---------------------------------------------------------------------------------------------
_HANDSHAKE_ERRORS = (
    pika.exceptions.ProbableAuthenticationError,
    pika.exceptions.ProbableAccessDeniedError,
    pika.exceptions.AuthenticationError,
)


def is_fatal(exc: BaseException) -> bool:
    """Tell broker errors that retrying cannot fix from those a reconnect will.

    Fatal: the broker refused our credentials or our access to the vhost (it says 403 /
    ACCESS_REFUSED / NOT_ALLOWED), or refused a declaration of ours (406 PRECONDITION_FAILED: the
    queue exists with other arguments; 403 on a resource the user may not touch). Not fatal: a
    handshake cut short by a broker that is starting or stopping (pika calls that a *probable*
    authentication error too, with a lost stream as its cause), and RabbitMQ's delivery
    acknowledgement timeout (also a 406), after which the consumer just reconnects.
    """
    text = str(exc)
    if isinstance(exc, _HANDSHAKE_ERRORS):
        return "ACCESS_REFUSED" in text or "NOT_ALLOWED" in text or "(403)" in text or "(530)" in text
    if isinstance(exc, pika.exceptions.ChannelClosedByBroker | pika.exceptions.ConnectionClosedByBroker):
        if exc.reply_code == 406 and "acknowledgement" in (exc.reply_text or "").lower():
            return False
        return exc.reply_code in (403, 406, 530)
    return False


UPGRADE_HINT = (
    "a queue or exchange exists with other arguments than this version declares (an earlier "
    "version created it): see README, Upgrading the broker topology; for `make run`, `make reset`"
)


def explain(exc: BaseException) -> str:
    """Describe a fatal broker error for the operator, with what to do when we know it."""
    text = repr(exc)
    if "inequivalent arg" in str(exc):
        return f"{text}: {UPGRADE_HINT}"
    return text


# ---------------------------------------------------------------------------------------------
# Quiet connection attempts
# ---------------------------------------------------------------------------------------------
_quiet_lock = threading.Lock()
_quiet_depth = 0
_quiet_saved_level = logging.NOTSET


@contextlib.contextmanager
def quiet_pika():
    """Keep pika's own log records out while the block runs (its refused attempts are ERRORs).

    The caller reports the outcome itself: a readiness probe in its answer, a worker that waits
    for its broker in one line. Process-wide and reentrant: pika logs from the thread that
    connects, and the processes here connect from one thread at a time.
    """
    global _quiet_depth, _quiet_saved_level
    pika_logger = logging.getLogger("pika")
    with _quiet_lock:
        if _quiet_depth == 0:
            _quiet_saved_level = pika_logger.level
            pika_logger.setLevel(logging.CRITICAL + 1)
        _quiet_depth += 1
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_depth -= 1
            if _quiet_depth == 0:
                pika_logger.setLevel(_quiet_saved_level)


class BrokerWait:
    """Until the broker first answers: one INFO line, and pika's per-attempt errors kept out of the log.

    A worker started beside its broker (`make run`, compose) waits a few seconds for it on every
    start, which is not an error. A wait longer than STILL_WAITING_SECONDS is logged once at
    WARNING. After the first connection, failures are the caller's to log, and pika's own records
    come back.
    """

    STILL_WAITING_SECONDS = 30.0

    def __init__(self, params: pika.ConnectionParameters, clock=time.monotonic):
        self.where = where(params)
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
        with quiet_pika():
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


def probe(params: pika.ConnectionParameters) -> dict:
    """Open and close one connection; return {"ok": True} or {"ok": False, "error": class name}."""
    try:
        with quiet_pika():
            pika.BlockingConnection(params).close()
    except Exception as exc:  # noqa: BLE001 - the class name only: the URL holds credentials
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True}
