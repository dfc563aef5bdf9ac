"""One trace crosses the broker: a web request's trace id reaches the other service's consumer span.

The test process runs a small OTLP/HTTP receiver (POST /v1/traces, protobuf) and a dedicated
admin+main pair (own vhost and databases, like the fault suite) whose every process exports to it.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from faults.support import AdminApi, Shop
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan

from harness.polling import eventually
from harness.servers import MariaDB, RabbitNode
from harness.services import PROCESS_NAMES, ServiceSet

VHOST = "tracing"
SERVER = ProtoSpan.SpanKind.SPAN_KIND_SERVER
CONSUMER = ProtoSpan.SpanKind.SPAN_KIND_CONSUMER


@dataclass(frozen=True)
class ReceivedSpan:
    """One exported span, flattened: which process sent it and what it is."""

    service: str
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, object]

    def http(self) -> tuple[str, str]:
        """Return (method, path) of an HTTP span, whichever semantic conventions it uses."""
        attrs = self.attributes
        method = str(attrs.get("http.request.method") or attrs.get("http.method") or "")
        path = str(attrs.get("url.path") or attrs.get("http.target") or attrs.get("http.route") or self.name)
        return method, path


def _value(any_value) -> object:
    field = any_value.WhichOneof("value")
    return getattr(any_value, field) if field else None


class OtlpReceiver:
    """An OTLP/HTTP trace receiver on 127.0.0.1:<free port> that keeps every span it is sent."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path != "/v1/traces":
                    receiver.errors.append(f"POST {self.path}")
                    self.send_error(404)
                    return
                try:
                    receiver.add(ExportTraceServiceRequest.FromString(body))
                except Exception as exc:  # noqa: BLE001 - reported by the test, not swallowed
                    receiver.errors.append(f"undecodable body: {exc!r}")
                    self.send_error(400)
                    return
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def add(self, request: ExportTraceServiceRequest) -> None:
        """Flatten and keep the spans of one export request."""
        received = []
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    received.append(
                        ReceivedSpan(
                            service=str(resource.get("service.name", "")),
                            name=span.name,
                            kind=span.kind,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            attributes={a.key: _value(a.value) for a in span.attributes},
                        )
                    )
        with self._lock:
            self.spans.extend(received)

    def find(self, predicate) -> list[ReceivedSpan]:
        """Return the spans received so far that satisfy predicate."""
        with self._lock:
            return [s for s in self.spans if predicate(s)]

    def summary(self) -> str:
        """Return one line per span (for failure messages)."""
        with self._lock:
            return "\n".join(
                f"{s.service} {s.name} kind={s.kind} trace={s.trace_id} parent={s.parent_span_id}"
                for s in self.spans
            )

    def stop(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


@dataclass
class TracedStack:
    """The dedicated services and the receiver they export to."""

    services: ServiceSet
    receiver: OtlpReceiver


def _ctl(rabbit: RabbitNode, *args: str) -> None:
    res = rabbit.ctl(*args)
    if res.returncode != 0 and "already exists" not in (res.stdout + res.stderr):
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {res.stdout}{res.stderr}")


@pytest.fixture(scope="module")
def traced(rabbit: RabbitNode, mariadb: MariaDB, tmp_path_factory) -> Iterator[TracedStack]:
    """Start admin+main on vhost `tracing` with fresh databases, every process exporting to the receiver."""
    receiver = OtlpReceiver()
    _ctl(rabbit, "add_vhost", VHOST)
    _ctl(rabbit, "set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*")
    amqp_url = f"amqp://guest:guest@127.0.0.1:{rabbit.amqp_port}/{VHOST}"
    admin_db = mariadb.create_db_user("tracing_admin_db", "tracing_admin", "tracing-admin-pw")
    main_db = mariadb.create_db_user("tracing_main_db", "tracing_main", "tracing-main-pw")
    services = ServiceSet(
        amqp_url,
        admin_db,
        main_db,
        log_dir=tmp_path_factory.mktemp("tracing-stack-logs"),
        web_concurrency=1,
        extra_env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "200",  # ms: spans reach the receiver quickly
        },
        # One service name per process, so the test can tell who exported a span.
        process_env={name: {"OTEL_SERVICE_NAME": name} for name in PROCESS_NAMES},
    )
    try:
        services.start()
        yield TracedStack(services, receiver)
    finally:
        services.cleanup()
        receiver.stop()


def _wait_for(traced: TracedStack, check, what: str, *procs: str, timeout: float = 30):
    """Poll check until truthy; on timeout fail with every span received and the processes' log tails."""
    try:
        return eventually(check, timeout=timeout, message=what)
    except AssertionError as exc:
        # Built now, not before polling: the spans that arrived meanwhile are the evidence.
        logs = "\n".join(f"--- {p}\n{traced.services.procs[p].log_tail(15)}" for p in procs)
        raise AssertionError(
            f"{exc}\nreceiver errors: {traced.receiver.errors}\nspans:\n{traced.receiver.summary()}\n{logs}"
        ) from None


def _from(span: ReceivedSpan, process: str) -> bool:
    # main names its resource "main" whatever OTEL_SERVICE_NAME says (admin honours it), so accept
    # the service name too; the span kind (CONSUMER, SERVER) then tells the process apart.
    return span.service in (process, process.split("-")[0])


def test_admins_post_and_mains_consumer_share_one_trace(traced: TracedStack):
    admin = AdminApi(traced.services.admin_url)
    try:
        product = admin.create("Traced lamp", "https://example.com/lamp.png")
    finally:
        admin.close()
    receiver = traced.receiver

    def admin_post_span():
        (span,) = receiver.find(
            lambda s: _from(s, "admin-web") and s.kind == SERVER and s.http() == ("POST", "/api/products")
        ) or [None]
        return span

    post = _wait_for(traced, admin_post_span, "admin-web SERVER span of POST /api/products", "admin-web")
    consumed = _wait_for(
        traced,
        lambda: receiver.find(
            lambda s: _from(s, "main-consumer") and s.kind == CONSUMER and s.trace_id == post.trace_id
        ),
        f"main-consumer span in trace {post.trace_id} (product {product['id']})",
        "admin-relay",
        "main-consumer",
    )
    # Not just the same trace: the consumer span hangs below the request (directly or via relay spans).
    in_trace = {s.span_id for s in receiver.find(lambda s: s.trace_id == post.trace_id)}
    assert consumed[0].parent_span_id in in_trace


def test_a_like_in_main_and_admins_consumer_share_one_trace(traced: TracedStack):
    admin = AdminApi(traced.services.admin_url)
    try:
        pid = admin.create("Traced chair", "https://example.com/chair.png")["id"]
    finally:
        admin.close()
    shop = Shop(traced.services.main_url)
    _wait_for(traced, lambda: shop.product(pid), f"product {pid} in main", "main-consumer")
    resp = shop.like(shop.shopper(), pid)
    assert resp.status_code == 200, resp.text
    receiver = traced.receiver
    like_path = f"/flask/api/products/{pid}/like"

    def like_span():
        spans = receiver.find(
            lambda s: _from(s, "main-web") and s.kind == SERVER and s.http() == ("POST", like_path)
        )
        return spans[0] if len(spans) == 1 else None

    like = _wait_for(traced, like_span, f"main-web SERVER span of POST {like_path}", "main-web")
    consumed = _wait_for(
        traced,
        lambda: receiver.find(
            lambda s: _from(s, "admin-consumer") and s.kind == CONSUMER and s.trace_id == like.trace_id
        ),
        f"admin-consumer span in trace {like.trace_id}",
        "main-relay",
        "admin-consumer",
    )
    in_trace = {s.span_id for s in receiver.find(lambda s: s.trace_id == like.trace_id)}
    assert consumed[0].parent_span_id in in_trace
