"""check_drift's long-running mode: replica_drift gauges, error counting, SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from messaging.management.commands import check_drift
from products.models import Product

pytestmark = pytest.mark.django_db


class FakeMain:
    """main's gallery API on a local port; `rows` is what GET /flask/api/products returns."""

    def __init__(self):
        self.rows: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                body = json.dumps(fake.rows).encode()
                # check_drift pages through main's list (sort=id, limit, cursor): one page here.
                status = 200 if self.path.split("?")[0] == "/flask/api/products" else 404
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_main():
    server = FakeMain()
    yield server
    server.stop()


def gauge(kind: str) -> float | None:
    return check_drift.REGISTRY.get_sample_value("replica_drift", {"kind": kind})


def errors() -> float:
    return check_drift.REGISTRY.get_sample_value("replica_drift_check_errors_total") or 0.0


def view(*products, overrides=None):
    rows = [
        {"id": p.pk, "title": p.title, "image": p.image, "likes": p.likes, "liked": False} for p in products
    ]
    for row in rows:
        row.update((overrides or {}).get(row["id"], {}))
    return rows


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_gauges_count_mismatching_products_per_kind(fake_main):
    a = Product.objects.create(title="A", image="https://x/a.png", likes=2)
    Product.objects.create(title="B", image="https://x/b.png")  # missing in main
    c = Product.objects.create(title="C", image="https://x/c.png", likes=1)
    d = Product.objects.create(title="D", image="https://x/d.png")
    # b missing in main; two ghosts; a retitled; c has other likes and a new image; d identical.
    fake_main.rows = view(
        a, c, d, overrides={a.pk: {"title": "old"}, c.pk: {"likes": 5, "image": "https://x/old.png"}}
    )
    fake_main.rows += [
        {"id": 9001, "title": "ghost", "image": "", "likes": 0},
        {"id": 9002, "title": "ghost", "image": "", "likes": 0},
    ]
    before = time.time()

    counts = check_drift.check_once_for_metrics(fake_main.url, 3)

    assert counts == {"missing_in_main": 1, "extra_in_main": 2, "fields": 2, "likes": 1}
    assert gauge("missing_in_main") == 1
    assert gauge("extra_in_main") == 2
    assert gauge("fields") == 2
    assert gauge("likes") == 1
    assert check_drift.REGISTRY.get_sample_value("replica_drift_last_check_timestamp_seconds") >= before


def test_gauges_drop_to_zero_once_main_matches(fake_main):
    a = Product.objects.create(title="A", image="https://x/a.png")
    fake_main.rows = []
    check_drift.check_once_for_metrics(fake_main.url, 3)
    assert gauge("missing_in_main") == 1

    fake_main.rows = view(a)
    check_drift.check_once_for_metrics(fake_main.url, 3)
    assert [gauge(kind) for kind in check_drift.KINDS] == [0, 0, 0, 0]


def test_unreachable_main_is_an_error_not_drift(fake_main):
    Product.objects.create(title="A", image="https://x/a.png")
    fake_main.rows = []
    check_drift.check_once_for_metrics(fake_main.url, 3)
    stamp = check_drift.REGISTRY.get_sample_value("replica_drift_last_check_timestamp_seconds")
    errors_before = errors()
    fake_main.stop()

    assert check_drift.check_once_for_metrics(fake_main.url, 1) is None

    assert errors() == errors_before + 1
    assert gauge("missing_in_main") == 1  # last figures kept
    assert check_drift.REGISTRY.get_sample_value("replica_drift_last_check_timestamp_seconds") == stamp


def test_a_non_list_answer_counts_as_an_error(monkeypatch):
    errors_before = errors()
    monkeypatch.setattr(check_drift.urllib.request, "urlopen", _answer(b'{"error": "boom"}'))
    assert check_drift.check_once_for_metrics("http://main", 1) is None
    monkeypatch.setattr(check_drift.urllib.request, "urlopen", _answer(b"<html>"))
    assert check_drift.check_once_for_metrics("http://main", 1) is None
    assert errors() == errors_before + 2


def _answer(body: bytes):
    class Response:
        headers: dict = {}

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self):
            return body

    return lambda request, timeout: Response()


# The loop drops stale connections between checks, as a long-running process must; inside the
# transaction a plain django_db test wraps around it, that would close the test's own connection.
@pytest.mark.django_db(transaction=True)
def test_every_mode_serves_metrics_and_stops_on_sigterm(fake_main):
    a = Product.objects.create(title="A", image="https://x/a.png")
    fake_main.rows = view(a, overrides={a.pk: {"likes": 3}})
    port = free_port()
    start = time.time()
    seen: dict[str, str] = {}

    def scrape_then_terminate():
        # Poll until the first check has run, read /metrics, then stop the command like Docker does.
        deadline = time.monotonic() + 10
        try:
            while time.monotonic() < deadline:
                stamp = check_drift.REGISTRY.get_sample_value("replica_drift_last_check_timestamp_seconds")
                if stamp and stamp >= start:
                    url = f"http://127.0.0.1:{port}/metrics"
                    with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310
                        seen["metrics"] = response.read().decode()
                    break
                time.sleep(0.02)
        finally:
            os.kill(os.getpid(), signal.SIGTERM)

    killer = threading.Thread(target=scrape_then_terminate, daemon=True)
    killer.start()
    previous = signal.getsignal(signal.SIGTERM)
    call_command("check_drift", "--main-url", fake_main.url, "--every", "0.05", "--metrics-port", str(port))
    killer.join(5)

    assert signal.getsignal(signal.SIGTERM) is previous  # handler restored
    text = seen["metrics"]
    assert 'replica_drift{kind="likes"} 1.0' in text
    assert 'replica_drift{kind="missing_in_main"} 0.0' in text
    assert "replica_drift_last_check_timestamp_seconds" in text
    assert "replica_drift_check_errors_total" in text


def test_every_must_be_positive_and_the_url_http():
    with pytest.raises(CommandError):
        call_command("check_drift", "--main-url", "http://main", "--every", "0")
    with pytest.raises(CommandError):
        call_command("check_drift", "--main-url", "file:///etc/passwd", "--every", "5")


def test_the_loop_lets_the_pipeline_start_before_its_first_check(monkeypatch):
    # At start the broker may still be booting: products waiting in admin's outbox are not drift.
    calls = []
    monkeypatch.setattr(
        check_drift, "check_once_for_metrics", lambda url, timeout: calls.append(time.monotonic())
    )
    monkeypatch.setattr(check_drift, "close_old_connections", lambda: None)
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    check_drift.run_forever("http://main", every=60, timeout=1, stop=stop)
    assert calls == [], "checked before the pipeline had time to start"
    monkeypatch.setattr(check_drift, "FIRST_CHECK_AFTER_SECONDS", 0.1)
    stop.clear()
    threading.Timer(0.3, stop.set).start()
    started = time.monotonic()
    check_drift.run_forever("http://main", every=60, timeout=1, stop=stop)
    assert len(calls) == 1 and calls[0] - started >= 0.1
