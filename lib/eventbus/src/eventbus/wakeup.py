"""The relay's wake-up: one UDP datagram after a commit that wrote outbox rows (README: How an event travels).

Fire and forget: the relay also polls every second, so a lost datagram costs at most that second.
The address is resolved once (a DNS lookup per commit would cost more than the datagram) and
resolved again only after a send fails, in case the relay moved.
"""

from __future__ import annotations

import functools
import logging
import socket

logger = logging.getLogger(__name__)

_socket: socket.socket | None = None


@functools.lru_cache(maxsize=8)
def _resolve(addr: str) -> tuple[int, tuple]:
    host, sep, port = addr.rpartition(":")
    if not sep:
        raise ValueError(f"not host:port: {addr!r}")
    info = socket.getaddrinfo(host.strip("[]") or "127.0.0.1", int(port), type=socket.SOCK_DGRAM)
    return info[0][0], info[0][4]


def wake(addr: str | None) -> None:
    """Send one datagram to the relay at addr ("host:port"); never raises; no-op when addr is empty."""
    global _socket
    if not addr:
        return
    try:
        family, sockaddr = _resolve(addr)
    except (OSError, ValueError, OverflowError):
        logger.debug("outbox wake-up address %s does not resolve", addr, exc_info=True)
        return
    try:
        if _socket is None or _socket.family != family:
            _socket = socket.socket(family, socket.SOCK_DGRAM)
            _socket.setblocking(False)
        _socket.sendto(b"wake", sockaddr)
    except ConnectionRefusedError:
        # No relay listening right now (ICMP port unreachable): fine, the relay also polls.
        pass
    except OSError:
        # Unreachable host or similar: the relay may have moved, so resolve its name again next time.
        _resolve.cache_clear()
