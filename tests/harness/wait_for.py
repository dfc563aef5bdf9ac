"""Wait until endpoints answer: amqp(s):// (a real AMQP login), http(s):// (a 2xx), tcp://host:port.

Usage (from tests/):  python -m harness.wait_for amqp://guest:guest@127.0.0.1:5672/%2F --timeout 60
       (anywhere):    python tests/harness/wait_for.py http://127.0.0.1:8000/api/health tcp://127.0.0.1:3306
Exits 0 when every endpoint answered, 1 on timeout (naming what did not answer), 2 on a bad argument.
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

logger = logging.getLogger("wait_for")

# AMQP 0-9-1 protocol header; a broker answers with a Connection.Start method frame (type 1).
_AMQP_HEADER = b"AMQP\x00\x00\x09\x01"


def _tcp(host: str, port: int, timeout: float) -> None:
    with socket.create_connection((host, port), timeout=timeout):
        pass


def _amqp(url: str, timeout: float) -> None:
    try:
        import pika
    except ImportError:  # no pika in this interpreter: a protocol-level check is still meaningful
        parts = urllib.parse.urlsplit(url)
        default = 5671 if parts.scheme == "amqps" else 5672
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default), timeout=timeout
        ) as s:
            s.settimeout(timeout)
            s.sendall(_AMQP_HEADER)
            if s.recv(1) != b"\x01":
                raise ConnectionError("not an AMQP 0-9-1 broker") from None
        return
    logging.getLogger("pika").setLevel(logging.CRITICAL)
    params = pika.URLParameters(url)
    params.connection_attempts = 1
    params.socket_timeout = timeout
    params.blocked_connection_timeout = timeout
    pika.BlockingConnection(params).close()


def _http(url: str, timeout: float) -> None:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        if not 200 <= resp.status < 300:
            raise ConnectionError(f"HTTP {resp.status}")


def check(endpoint: str, timeout: float = 3) -> None:
    """Raise unless the endpoint answers now."""
    scheme = urllib.parse.urlsplit(endpoint).scheme
    if scheme in ("amqp", "amqps"):
        _amqp(endpoint, timeout)
    elif scheme in ("http", "https"):
        _http(endpoint, timeout)
    else:
        hostport = endpoint.removeprefix("tcp://").rstrip("/")
        host, _, port = hostport.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(
                f"cannot tell how to reach {endpoint!r}: use amqp://, http(s)://, tcp://host:port"
            )
        _tcp(host, int(port), timeout)


def wait_for(endpoints: list[str], timeout: float = 60, interval: float = 0.25) -> list[str]:
    """Poll every endpoint until it answers or the deadline passes; return the ones that never answered."""
    pending = list(endpoints)
    errors: dict[str, str] = {}
    start = time.monotonic()
    next_report = start + 5
    while pending:
        for endpoint in list(pending):
            try:
                check(endpoint)
            except ValueError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure means "not yet"
                errors[endpoint] = f"{type(exc).__name__}: {exc}"
            else:
                pending.remove(endpoint)
                logger.info("%s is up after %.1fs", _redact(endpoint), time.monotonic() - start)
        now = time.monotonic()
        if not pending or now - start >= timeout:
            break
        if now >= next_report:
            logger.info("still waiting for %s", ", ".join(_redact(e) for e in pending))
            next_report = now + 5
        time.sleep(interval)
    for endpoint in pending:
        logger.error(
            "%s did not answer within %ss (%s)",
            _redact(endpoint),
            timeout,
            errors.get(endpoint),
        )
    return pending


def _redact(endpoint: str) -> str:
    parts = urllib.parse.urlsplit(endpoint)
    if parts.password:
        netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    return endpoint


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, wait, and return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("endpoints", nargs="+", help="amqp(s)://..., http(s)://..., tcp://host:port")
    parser.add_argument(
        "--timeout",
        type=float,
        default=60,
        help="seconds to wait in total (default 60)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="wait_for: %(message)s", stream=sys.stderr)
    try:
        missing = wait_for(args.endpoints, timeout=args.timeout)
    except ValueError as exc:
        logger.error("%s", exc)
        return 2
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
