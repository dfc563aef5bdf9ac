"""messaging.outbox.enqueue writes the envelope and trace context, then wakes the relay."""

import json
import socket
import uuid

import pytest
from django.db import transaction
from opentelemetry import trace

from messaging import outbox
from messaging.models import OutboxEvent

pytestmark = pytest.mark.django_db

DATA = {"id": 7, "title": "Mug", "image": "https://e.com/m.png", "version": 1}


@pytest.fixture
def udp_listener(settings):
    """A UDP socket on a free port that OUTBOX_WAKEUP_ADDR points at."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(2.0)
    settings.OUTBOX_WAKEUP_ADDR = f"127.0.0.1:{sock.getsockname()[1]}"
    yield sock
    sock.close()


def test_enqueue_stores_the_full_envelope():
    row = outbox.enqueue("product.created", DATA)
    env = json.loads(row.payload)
    assert str(uuid.UUID(env["id"])) == env["id"] == row.event_id
    assert (env["type"], env["version"], env["producer"], env["data"]) == (
        "product.created",
        1,
        "admin",
        DATA,
    )
    assert env["occurred_at"].endswith("Z")
    assert (row.attempts, row.published_at, row.last_error) == (0, None, None)
    assert row.available_at is not None


def test_enqueue_records_the_current_trace_context():
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("request") as span:
        row = outbox.enqueue("product.created", DATA)
        trace_id = format(span.get_span_context().trace_id, "032x")
    headers = json.loads(row.headers)
    assert headers["traceparent"].split("-")[1] == trace_id


def test_enqueue_outside_a_span_stores_empty_headers():
    assert json.loads(outbox.enqueue("product.created", DATA).headers) == {}


def test_enqueue_refuses_data_that_breaks_the_contract():
    with pytest.raises(ValueError):
        outbox.enqueue("product.created", {"id": 7})
    with pytest.raises(ValueError):
        outbox.enqueue("product.exploded", DATA)
    assert not OutboxEvent.objects.exists()


def test_wakeup_datagram_is_sent_after_commit_only(udp_listener, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        outbox.enqueue("product.created", DATA)
    udp_listener.settimeout(0.05)
    with pytest.raises(TimeoutError):
        udp_listener.recv(64)  # nothing before the commit
    udp_listener.settimeout(2.0)
    for callback in callbacks:
        callback()
    assert udp_listener.recv(64) == b"wake"


def test_rolled_back_enqueue_sends_no_datagram(udp_listener, django_capture_on_commit_callbacks):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        outbox.enqueue("product.created", DATA)
        raise RuntimeError("rollback")
    assert callbacks == []
    assert not OutboxEvent.objects.exists()


@pytest.mark.parametrize("addr", ["", "nonsense", "127.0.0.1:notaport", "256.1.1.1:7801", "[::1]:9"])
def test_wake_relay_never_raises(settings, addr):
    settings.OUTBOX_WAKEUP_ADDR = addr
    outbox.wake_relay()


def test_one_wakeup_per_transaction_however_many_rows(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks, transaction.atomic():
        for pid in range(1, 6):
            outbox.enqueue("product.created", {**DATA, "id": pid})
    assert callbacks == [outbox.wake_relay]
    assert OutboxEvent.objects.count() == 5


def test_a_row_after_a_rolled_back_savepoint_still_wakes_the_relay(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks, transaction.atomic():
        with pytest.raises(RuntimeError), transaction.atomic():
            outbox.enqueue("product.created", DATA)
            raise RuntimeError("savepoint rolled back")
        outbox.enqueue("product.created", {**DATA, "id": 8})
    assert callbacks == [outbox.wake_relay]
