"""A real Prometheus, with the shipped rules, scrapes the running services and the broker.

Every target is up, the rules evaluate without errors, the key series and recording rules have
data after some traffic, and every dashboard query and every alert's data has at least one
series: a panel that would say "No data" on a working stack fails here.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import uuid
from collections.abc import Iterator

import pytest
import requests
from faults.support import envelope_of, publish_raw, query
from observability.promql import (
    alert_rules,
    dashboard_exprs,
    data_expressions,
    load_dashboards,
    render_local_config,
    substitute_grafana_variables,
)

from harness.polling import eventually
from harness.servers import Prometheus, RabbitNode, port_open
from harness.services import ADMIN_PASSWORD, ADMIN_USERNAME, ServiceSet

JOBS = (
    "admin-web",
    "admin-consumer",
    "admin-relay",
    "main-web",
    "main-consumer",
    "main-relay",
    "drift-check",
    "rabbitmq",
)
# Series this test cannot have, each with the reason; every other query must return data.
NOT_RUN_HERE = {
    "node_": "host metrics come from node-exporter, which only docker compose runs",
}
# A panel over error counters falls back to a 0 series while they have none (build_dashboards.or_none);
# the counter itself must have data too, except these, which only an exception (a 5xx) creates.
FALLBACK = ' or label_replace(vector(0), "'
ONLY_AFTER_AN_EXCEPTION = (
    "django_http_exceptions_total_by_type_total",
    "flask_http_request_exceptions_total",
    "django_db_errors_total",
    "sqlalchemy_errors_total",
)

# Series and recording rules the alerts and dashboards depend on; each must have data.
KEY_EXPRESSIONS = (
    'service:http_requests:rate5m{service="admin"}',
    'service:http_requests:rate5m{service="main"}',
    'service:http_error_ratio:rate5m{service="admin"}',
    'service:http_error_ratio:rate5m{service="main"}',
    'service:http_request_duration_seconds:p99_5m{service="admin"}',
    'service:http_request_duration_seconds:p99_5m{service="main"}',
    'consumer_up{service="admin"} == 1',
    'consumer_up{service="main"} == 1',
    'events_published_total{service="admin", type="product.created"} > 0',
    'events_published_total{service="main", type="product.liked"} > 0',
    'events_consumed_total{service="main", type="product.created"} > 0',
    'events_consumed_total{service="admin", type="product.liked"} > 0',
    'outbox_pending{service="admin"}',
    'outbox_oldest_age_seconds{service="main"}',
    'event_apply_age_seconds_count{service="main"} > 0',
    # needs a le="2" bucket on main's event_apply_age_seconds (the SLO threshold)
    "slo:event_freshness_errors:ratio_rate5m",
    'rabbitmq_queue_messages_ready{queue="main.dlq"}',
    'rabbitmq_queue_consumers{queue="main"} >= 1',
    'rabbitmq_queue_consumers{queue="admin"} >= 1',
)


def _host_port(url: str) -> str:
    return urllib.parse.urlsplit(url).netloc


@pytest.fixture(scope="module")
def rabbit_metrics(rabbit: RabbitNode) -> Iterator[str]:
    """Enable rabbitmq_prometheus on the session node for one test; return its host:port."""
    result = rabbit.ctl("enable", "rabbitmq_prometheus", tool="rabbitmq-plugins")
    assert result.returncode == 0, result.stdout + result.stderr
    try:
        eventually(
            lambda: port_open(rabbit.prom_port),
            timeout=30,
            message="rabbitmq_prometheus listening",
        )
        yield f"127.0.0.1:{rabbit.prom_port}"
    finally:
        rabbit.ctl("disable", "rabbitmq_prometheus", tool="rabbitmq-plugins")


@pytest.fixture(scope="module")
def prometheus(stack: ServiceSet, rabbit_metrics: str) -> Iterator[Prometheus]:
    """Return a running Prometheus scraping every process of the stack and the broker every second."""
    ports = {
        "admin_web": _host_port(stack.admin_url),
        "main_web": _host_port(stack.main_url),
        "rabbitmq": rabbit_metrics,
        **{name.replace("-", "_"): f"127.0.0.1:{port}" for name, port in stack.metrics_ports.items()},
    }
    server = Prometheus(render_local_config(ports, scrape_interval="1s"))
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


def _make_traffic(stack: ServiceSet) -> None:
    """Create and edit a product in admin, wait for main's replica, like it, wait for admin's count."""
    with requests.Session() as admin, requests.Session() as shopper:
        admin.auth = (ADMIN_USERNAME, ADMIN_PASSWORD)
        created = admin.post(
            f"{stack.admin_url}/api/products",
            json={"title": "observed", "image": "https://example.com/o.png"},
            timeout=10,
        )
        assert created.status_code == 201, created.text
        product_id = created.json()["id"]

        def replicated() -> bool:
            products = shopper.get(f"{stack.main_url}/flask/api/products", timeout=10).json()
            return any(p["id"] == product_id for p in products)

        eventually(replicated, timeout=30, message="product replicated to main")
        edited = admin.patch(
            f"{stack.admin_url}/api/products/{product_id}", json={"title": "observed, edited"}, timeout=10
        )
        assert edited.status_code == 202, edited.text
        # One client error on each side, as any working shop sees: the 4xx panels plot real series.
        assert admin.post(f"{stack.admin_url}/api/products", json={}, timeout=10).status_code == 400
        assert (
            shopper.post(f"{stack.main_url}/flask/api/products/999999999/like", timeout=10).status_code == 404
        )
        liked = shopper.post(f"{stack.main_url}/flask/api/products/{product_id}/like", timeout=10)
        assert liked.status_code == 200, liked.text
        eventually(
            lambda: (
                admin.get(f"{stack.admin_url}/api/products/{product_id}", timeout=10).json()["likes"] == 1
            ),
            timeout=30,
            message="like counted in admin",
        )


def _wait_all_targets_up(prometheus: Prometheus, stack: ServiceSet) -> None:
    """Wait until every job's target is up; on failure show Prometheus' scrape error and the process log."""

    def down() -> list[str]:
        return [job for job in JOBS if not prometheus.query(f'up{{job="{job}"}} == 1')]

    try:
        eventually(lambda: not down(), timeout=60, interval=0.5, message="all targets up")
    except AssertionError:
        targets = prometheus.api("targets")["activeTargets"]
        errors = {t["labels"]["job"]: (t["health"], t["lastError"]) for t in targets}
        logs = {job: stack.log_text(job)[-1500:] for job in down() if job != "rabbitmq"}
        raise AssertionError(f"targets not up: {down()}; scrape status {errors}; logs {logs}") from None


def test_prometheus_scrapes_every_target_and_rules_have_data(prometheus: Prometheus, stack: ServiceSet):
    _wait_all_targets_up(prometheus, stack)

    _make_traffic(stack)

    for expr in KEY_EXPRESSIONS:
        prometheus.wait_for(expr, timeout=30)

    groups = prometheus.api("rules")["groups"]
    assert {g["name"] for g in groups} >= {
        "http",
        "slo_freshness",
        "events",
        "availability",
        "event_pipeline",
    }
    broken = [(r["name"], r.get("lastError")) for g in groups for r in g["rules"] if r["health"] != "ok"]
    assert broken == []
    assert prometheus.query('ALERTS{alertname=~"ServiceDown|ConsumerMissing", alertstate="firing"}') == []


def _poison_and_duplicate(stack: ServiceSet) -> None:
    """Send main one message it must dead-letter and one it has already applied."""
    publish_raw(
        stack.rabbitmq_url,
        "admin.events",
        "product.created",
        b"{not json",
        message_id=str(uuid.uuid4()),
        event_type="product.created",
    )
    (event_id,) = query(
        stack.database_urls["admin"],
        "SELECT event_id FROM outbox WHERE published_at IS NOT NULL ORDER BY id DESC LIMIT 1",
    )[0]
    envelope, headers = envelope_of(stack.database_urls["admin"], event_id)
    publish_raw(
        stack.rabbitmq_url,
        "admin.events",
        envelope["type"],
        json.dumps(envelope).encode(),
        message_id=envelope["id"],
        event_type=envelope["type"],
        headers=headers,
    )


@pytest.fixture
def purge_main_dlq(stack: ServiceSet) -> Iterator[None]:
    """Leave main's dead-letter queue empty for the tests that come after."""
    yield
    stack.command("main", "dlq", "purge", check=False)


def _not_run_here(expr: str) -> str | None:
    return next((why for prefix, why in NOT_RUN_HERE.items() if prefix in expr), None)


def test_every_dashboard_query_and_alert_has_data(
    prometheus: Prometheus, stack: ServiceSet, purge_main_dlq: None
):
    _wait_all_targets_up(prometheus, stack)
    _make_traffic(stack)
    _poison_and_duplicate(stack)
    wanted: dict[str, str] = {}  # expression -> where it is used
    for name, dash in load_dashboards().items():
        for expr in dashboard_exprs(dash):
            expr = substitute_grafana_variables(expr)
            wanted[expr] = f"dashboard {name}"
            counter = expr.split(FALLBACK)[0]
            if counter != expr and not any(metric in counter for metric in ONLY_AFTER_AN_EXCEPTION):
                wanted[counter] = f"dashboard {name}, without its 0 fallback"
    for rule in alert_rules():
        for expr in data_expressions(rule["expr"]):
            wanted[expr] = f"alert {rule['alert']}"
    skipped = {expr: _not_run_here(expr) for expr in wanted if _not_run_here(expr)}
    assert skipped, "NOT_RUN_HERE matches nothing: remove the entry"
    pending = {expr: where for expr, where in wanted.items() if expr not in skipped}

    # Rates need two scrapes in their window; the dead-letter alert fires after its `for: 1m`.
    deadline = time.monotonic() + 150
    while pending and time.monotonic() < deadline:
        pending = {expr: where for expr, where in pending.items() if not prometheus.query(expr)}
        time.sleep(2)
    shown = "\n".join(f"  {where}: {expr}" for expr, where in sorted(pending.items(), key=lambda i: i[1]))
    assert not pending, f"{len(pending)} of {len(wanted)} queries have no data on a working stack:\n{shown}"
    dead = prometheus.query('events_dead_lettered_total{service="main", reason="bad_json"} > 0')
    dupes = prometheus.query('events_duplicates_total{service="main"} > 0')
    assert dead and dupes, "the poison and the duplicate did not reach main's consumer"
