"""A real Prometheus, with the shipped rules, scrapes the running services and the broker.

Every target is up, the rules evaluate without errors, the key series and recording rules have
data after some traffic, and every dashboard query runs.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator

import pytest
import requests
from observability.promql import (
    dashboard_exprs,
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
    "rabbitmq",
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
    """Create a product in admin, wait for main's replica, like it, wait for admin's count."""
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


def test_every_dashboard_query_runs(prometheus: Prometheus):
    prometheus.wait_for('up{job="rabbitmq"} == 1', timeout=60)
    for dash in load_dashboards().values():
        for expr in dashboard_exprs(dash):
            prometheus.query(substitute_grafana_variables(expr))  # raises on a query error
