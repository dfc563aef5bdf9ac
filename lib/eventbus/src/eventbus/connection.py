"""Broker connections: parameters from RABBITMQ_URL (one address or several), the fatal-error rule,
waiting for a starting broker."""

from __future__ import annotations

import contextlib
import logging
import random
import re
import ssl
import threading
import time
import urllib.parse
from collections.abc import Iterator, Sequence

import pika
import pika.connection
import pika.exceptions
from pika.adapters.utils import connection_workflow

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 30
BLOCKED_CONNECTION_TIMEOUT_SECONDS = 60
SOCKET_TIMEOUT_SECONDS = 10
SCHEMES = ("amqp", "amqps")


class ConfigError(ValueError):
    """RABBITMQ_URL cannot be used as it is; the message names the address, never its password."""


# A new address begins at a comma followed by a scheme: a comma inside one URL (RFC 3986 allows it
# in a password) stays part of that URL.
_ADDRESS_START = re.compile(r",\s*(?=[A-Za-z][A-Za-z0-9+.-]*://)")
_PASSWORD = re.compile(r"(://[^:/@\s]*):[^@\s]*@")


def masked(url: str) -> str:
    """Return url with its password replaced by ***, for messages and logs."""
    return _PASSWORD.sub(r"\1:***@", url)


def split_urls(value: str) -> list[str]:
    """Return the broker addresses in RABBITMQ_URL: whole amqp(s):// URLs separated by commas.

    Spaces around an address and empty items (a trailing comma) are ignored.
    """
    urls = [part.strip() for part in _ADDRESS_START.split(value or "")]
    urls = [url for url in urls if url.strip(", ")]
    if not urls:
        raise ConfigError(
            "RABBITMQ_URL names no broker: give one amqp:// or amqps:// URL, or several separated by commas"
        )
    return [url.rstrip(", ") for url in urls]


def _url_parameters(url: str, position: str) -> pika.URLParameters:
    named = f"RABBITMQ_URL{position} ({masked(url)})"
    whole = (
        "each address is a whole amqp://user:password@host:port/vhost or amqps://... URL, "  # pragma: allowlist secret
        "several separated by commas"
    )
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in SCHEMES:
        raise ConfigError(f"{named} is not an AMQP URL: {whole}")
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError as exc:
        raise ConfigError(f"{named} is not a valid AMQP URL: {exc}") from None
    if "," in parts.netloc.rpartition("@")[2] or "," in parts.path:
        # Only a password may hold a bare comma: "amqp://a:5672, b:5672" is one URL gone wrong.
        raise ConfigError(f"{named} holds a comma outside its password: {whole} (a comma in a vhost is %2C)")
    try:
        params = pika.URLParameters(url)
    except ValueError as exc:
        raise ConfigError(f"{named} is not a valid AMQP URL: {exc}") from None
    if not params.host or any(c.isspace() for c in params.host):
        raise ConfigError(f"{named} has no usable host: {whole}")
    return params


def parameters(
    url: str,
    ca_file: str | None = None,
    *,
    client_name: str | None = None,
    heartbeat: int = HEARTBEAT_SECONDS,
    blocked_connection_timeout: float = BLOCKED_CONNECTION_TIMEOUT_SECONDS,
    socket_timeout: float = SOCKET_TIMEOUT_SECONDS,
    stack_timeout: float | None = None,
) -> pika.URLParameters | Brokers:
    """Build pika parameters from RABBITMQ_URL; amqps:// verifies the certificate and host name.

    One address gives one pika.URLParameters; several (comma-separated) give a Brokers, the
    sequence of them that pika's connections also take, each address configured alike.
    Raises ConfigError naming the address at fault.
    """
    urls = split_urls(url)
    built = []
    for index, one in enumerate(urls, 1):
        position = "" if len(urls) == 1 else f" address {index} of {len(urls)}"
        params = _url_parameters(one, position)
        params.heartbeat = heartbeat
        params.blocked_connection_timeout = blocked_connection_timeout
        # One attempt: the workers' own loops retry with backoff, and pika's retries would hide an
        # outage from them.
        params.connection_attempts = 1
        params.socket_timeout = socket_timeout
        if stack_timeout is not None:
            params.stack_timeout = stack_timeout
        if client_name:
            params.client_properties = {"connection_name": client_name}
        if one.lower().startswith("amqps://"):
            # create_default_context: CERT_REQUIRED and check_hostname=True; a private CA via ca_file.
            context = ssl.create_default_context(cafile=ca_file or None)
            params.ssl_options = pika.SSLOptions(context, server_hostname=params.host)
        built.append(params)
    return built[0] if len(built) == 1 else Brokers(built)


class Brokers(Sequence):
    """The broker addresses a worker may connect to; each new connection starts one further on.

    pika tries a sequence of parameters in order and takes the first that answers
    (BlockingConnection, SelectConnection.create_connection). Started always from the same one, a
    node that is down would cost every reconnect a refused (or, on a real network, a timed-out)
    attempt first. So each call to order() starts one address further on, from a random first one,
    which also spreads a fleet of workers over the nodes.
    """

    def __init__(self, params: Sequence[pika.connection.Parameters], *, start: int | None = None):
        self._params = list(params)
        if not self._params:
            raise ValueError("Brokers needs at least one address")
        self._next = random.randrange(len(self._params)) if start is None else start % len(self._params)
        self._lock = threading.Lock()

    @classmethod
    def of(cls, params: pika.connection.Parameters | Sequence[pika.connection.Parameters]) -> Brokers:
        """Return params as a Brokers (one address, or a sequence of them; a Brokers as it is)."""
        if isinstance(params, Brokers):
            return params
        if isinstance(params, pika.connection.Parameters):
            return cls([params], start=0)
        return cls(params)

    def __getitem__(self, index):
        return self._params[index]

    def __len__(self) -> int:
        return len(self._params)

    def __iter__(self) -> Iterator[pika.connection.Parameters]:
        return iter(self._params)

    def order(self) -> list[pika.connection.Parameters]:
        """Return every address in the order the next connection tries them, and move the start on."""
        with self._lock:
            start, self._next = self._next, (self._next + 1) % len(self._params)
        return self._params[start:] + self._params[:start]

    def __repr__(self) -> str:
        return f"Brokers({where(self)})"


def where(params: pika.connection.Parameters | Sequence[pika.connection.Parameters]) -> str:
    """Return host:port of the broker (comma-separated for several), for logs (never the credentials)."""
    if isinstance(params, pika.connection.Parameters):
        return f"{params.host}:{params.port}"
    return ", ".join(f"{p.host}:{p.port}" for p in params)


def workflow_error(error: BaseException) -> BaseException:
    """Return the error of the last attempt in a failed multi-address connection (what pika's
    BlockingConnection raises in that case), so that is_fatal can judge it."""
    if isinstance(error, connection_workflow.AMQPConnectionWorkflowFailed) and error.exceptions:
        error = error.exceptions[-1]
        if isinstance(error, connection_workflow.AMQPConnectorSocketConnectError):
            return pika.exceptions.AMQPConnectionError(error)
        if isinstance(error, connection_workflow.AMQPConnectorPhaseErrorBase):
            return error.exception
    return error


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

    def __init__(
        self, params: pika.connection.Parameters | Sequence[pika.connection.Parameters], clock=time.monotonic
    ):
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


def probe(params: pika.connection.Parameters | Sequence[pika.connection.Parameters]) -> dict:
    """Open and close one connection, to the first address that answers.

    Return {"ok": True} or {"ok": False, "error": class name}.
    """
    try:
        with quiet_pika():
            pika.BlockingConnection(Brokers.of(params).order()).close()
    except Exception as exc:  # noqa: BLE001 - the class name only: the URL holds credentials
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True}
