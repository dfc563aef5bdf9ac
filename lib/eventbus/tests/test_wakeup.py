"""The relay wake-up datagram: sent, never raising, resolved once."""

import socket
from unittest import mock

import pytest
from eventbus import wakeup
from eventbus.publisher import open_wakeup_socket


@pytest.fixture(autouse=True)
def fresh_cache():
    wakeup._resolve.cache_clear()
    yield
    wakeup._resolve.cache_clear()


def test_wake_sends_one_datagram_the_relay_socket_receives():
    receiver = open_wakeup_socket("127.0.0.1:0")
    try:
        wakeup.wake(f"127.0.0.1:{receiver.getsockname()[1]}")
        receiver.settimeout(2)
        assert receiver.recv(16) == b"wake"
    finally:
        receiver.close()


@pytest.mark.parametrize(
    "addr", ["", None, "no-port", "host.invalid:7802", "127.0.0.1:99999", "127.0.0.1:notaport", "[::1]:x"]
)
def test_wake_never_raises(addr):
    wakeup.wake(addr)


def test_the_address_is_resolved_once_not_per_commit():
    receiver = open_wakeup_socket("127.0.0.1:0")
    addr = f"localhost:{receiver.getsockname()[1]}"
    try:
        with mock.patch.object(socket, "getaddrinfo", wraps=socket.getaddrinfo) as lookups:
            for _ in range(20):
                wakeup.wake(addr)
        assert lookups.call_count == 1
    finally:
        receiver.close()


def test_a_failed_send_forgets_the_address_so_a_moved_relay_is_found_again():
    wakeup.wake("127.0.0.1:9")
    assert wakeup._resolve.cache_info().currsize == 1
    with mock.patch.object(wakeup, "_socket") as broken:
        broken.family = socket.AF_INET
        broken.sendto.side_effect = OSError("network is unreachable")
        wakeup.wake("127.0.0.1:9")
    assert wakeup._resolve.cache_info().currsize == 0
