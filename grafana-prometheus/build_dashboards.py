"""Generate the Grafana dashboards in grafana/dashboards/ (standard library only).

Run `python grafana-prometheus/build_dashboards.py` after editing this file and commit the JSON;
`--check` exits 1 when the committed JSON differs from what this script generates (a test does
the same). Panels query the provisioned Prometheus data source (uid "prometheus"); the metric
names are those of django-prometheus, prometheus-flask-exporter, the services' event metrics
(the same names in both services' consumers and relays), rabbitmq_prometheus
(/metrics/per-object) and node-exporter, plus the recording rules in prometheus/recording.yml.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT_DIR = HERE / "grafana" / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
TAG = "microservices"
RATE = "$__rate_interval"
FULL_WIDTH = 24

# PromQL fragments used on several dashboards.
HTTP_REQUESTS_BY_SERVICE = (
    f"sum by (service) (rate(django_http_responses_total_by_status_view_method_total[{RATE}]))"
    f" or sum by (service) (rate(flask_http_request_total[{RATE}]))"
)
DLQ_READY = r'sum by (queue) (rabbitmq_queue_messages_ready{queue=~".*\\.dlq"})'
SERVICE_QUEUES_READY = 'sum by (queue) (rabbitmq_queue_messages_ready{queue=~"admin|main"})'
FRESH_BUCKET = r'event_apply_age_seconds_bucket{service="main", le=~"2|2\\.0"}'
# The consumers' own view of their dead-letter queues (lib/eventbus, every 15 s); every replica of a
# consumer reports the same queue, hence max.
DEAD_LETTERS = "max by (queue) (dead_letters)"
DEAD_LETTER_OLDEST_AGE = "max by (queue) (dead_letter_oldest_age_seconds)"

# Grafana and the SPA live on different origins, so a link to the SPA needs its base URL: a textbox
# variable, http://localhost (compose's FRONTEND_PORT 80) unless the viewer types another or the
# link that opens the dashboard carries ?var-spa_url=https://shop.example.com.
SPA_URL_DEFAULT = "http://localhost"
SPA_URL_VARIABLE = {
    "type": "textbox",
    "name": "spa_url",
    "label": "SPA URL",
    "description": "Base URL of the SPA, for the links to the dead-letter workbench (/admin/dead-letters).",
    "query": SPA_URL_DEFAULT,
    "current": {"selected": False, "text": SPA_URL_DEFAULT, "value": SPA_URL_DEFAULT},
    "options": [{"selected": True, "text": SPA_URL_DEFAULT, "value": SPA_URL_DEFAULT}],
    "hide": 0,
    "skipUrlSync": False,
}
WORKBENCH_LINK = {
    "title": "Open the dead-letter workbench (SPA /admin/dead-letters)",
    "url": "${spa_url}/admin/dead-letters",
    "targetBlank": True,
}


def or_none(expr: str, label: str) -> str:
    """Return expr, or one series {label="none"} of 0 while expr has none: error counters labelled
    by type or status have no series before the first such error, and a healthy system should
    show 0, not "No data"."""
    return f'{expr} or label_replace(vector(0), "{label}", "none", "", "")'


def target(expr: str, legend: str = "", instant: bool = False) -> dict:
    """Return one Prometheus query of a panel."""
    return {
        "expr": expr,
        "legendFormat": legend or "__auto",
        "instant": instant,
        "range": not instant,
    }


def panel(
    title: str,
    targets: list[dict],
    *,
    kind: str = "timeseries",
    unit: str = "short",
    width: int = 12,
    height: int = 8,
    description: str = "",
    thresholds: list[tuple[float, str]] | None = None,
    mappings: list[dict] | None = None,
    links: list[dict] | None = None,
    overrides: list[dict] | None = None,
) -> dict:
    """Return a panel without id and position (dashboard() assigns them)."""
    steps = [{"color": "green", "value": None}]
    steps += [{"color": color, "value": value} for value, color in (thresholds or [])]
    built = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": [dict(t, refId=chr(ord("A") + i), datasource=DATASOURCE) for i, t in enumerate(targets)],
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "thresholds": {"mode": "absolute", "steps": steps},
                "mappings": mappings or [],
            },
            "overrides": overrides or [],
        },
        "_size": (width, height),
    }
    if links:
        built["links"] = links
    if kind == "timeseries":
        built["options"] = {
            "legend": {
                "displayMode": "list",
                "placement": "bottom",
                "showLegend": True,
            },
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
        built["fieldConfig"]["defaults"]["custom"] = {
            "drawStyle": "line",
            "fillOpacity": 10,
            "lineWidth": 1,
            "showPoints": "never",
            "spanNulls": True,
            "thresholdsStyle": {"mode": "line" if thresholds else "off"},
        }
    elif kind == "stat":
        built["options"] = {
            "colorMode": "background",
            "graphMode": "none",
            "justifyMode": "auto",
            "textMode": "value_and_name",
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        }
    elif kind == "table":
        built["options"] = {"showHeader": True}
        for t in built["targets"]:
            t["format"] = "table"
    return built


UP_MAPPING = [
    {
        "type": "value",
        "options": {
            "0": {"text": "DOWN", "color": "red"},
            "1": {"text": "UP", "color": "green"},
        },
    }
]


def dashboard(
    uid: str, title: str, description: str, panels: list[dict], variables: list[dict] | None = None
) -> dict:
    """Return a dashboard with panels laid out left to right, wrapping at the grid width."""
    x = y = row_height = 0
    laid_out = []
    for panel_id, item in enumerate(panels, start=1):
        item = dict(item)
        width, height = item.pop("_size")
        if x + width > FULL_WIDTH:
            x, y, row_height = 0, y + row_height, 0
        item["id"] = panel_id
        item["gridPos"] = {"x": x, "y": y, "w": width, "h": height}
        x += width
        row_height = max(row_height, height)
        laid_out.append(item)
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": [TAG],
        "editable": False,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-1h", "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "annotations": {"list": []},
        "templating": {"list": variables or []},
        "links": [
            {
                "type": "dashboards",
                "tags": [TAG],
                "asDropdown": True,
                "title": "Dashboards",
                "includeVars": False,
                "keepTime": True,
            }
        ],
        "panels": laid_out,
    }


def overview() -> dict:
    """Return the one-screen summary: availability, traffic, errors, latency, events."""
    return dashboard(
        "overview",
        "Microservices Overview",
        "Health, traffic and event flow of admin and main.",
        [
            panel("Targets up", [target("sum(up)", "up")], kind="stat", width=4, height=4),
            panel(
                "Targets down",
                [target("count(up == 0) or vector(0)", "down")],
                kind="stat",
                width=4,
                height=4,
                thresholds=[(1, "red")],
            ),
            panel(
                "Firing alerts",
                [target('count(ALERTS{alertstate="firing"}) or vector(0)', "firing")],
                kind="stat",
                width=4,
                height=4,
                thresholds=[(1, "red")],
            ),
            panel(
                "Consumers up",
                [target("sum(consumer_up)", "consumers")],
                kind="stat",
                width=4,
                height=4,
            ),
            panel(
                "Outbox pending",
                [target("sum(outbox_pending) or vector(0)", "pending")],
                kind="stat",
                width=4,
                height=4,
                thresholds=[(100, "orange")],
            ),
            panel(
                "Dead letters",
                [target(f"sum({DLQ_READY}) or vector(0)", "dlq")],
                kind="stat",
                width=4,
                height=4,
                thresholds=[(1, "red")],
                description="Messages in the dead-letter queues (the broker's count). The link opens the SPA's workbench.",
                links=[WORKBENCH_LINK],
            ),
            panel(
                "HTTP requests/s by service",
                [target(HTTP_REQUESTS_BY_SERVICE, "{{service}}")],
                unit="reqps",
            ),
            panel(
                "5xx ratio by service",
                [target("service:http_error_ratio:rate5m", "{{service}}")],
                unit="percentunit",
                thresholds=[(0.05, "red")],
            ),
            panel(
                "p99 latency by service",
                [target("service:http_request_duration_seconds:p99_5m", "{{service}}")],
                unit="s",
                thresholds=[(1, "red")],
            ),
            panel(
                "Events published / consumed per second",
                [
                    target(
                        f"sum by (service) (rate(events_published_total[{RATE}]))",
                        "{{service}} published",
                    ),
                    target(
                        f"sum by (service) (rate(events_consumed_total[{RATE}]))",
                        "{{service}} consumed",
                    ),
                ],
                unit="ops",
            ),
        ],
        variables=[SPA_URL_VARIABLE],
    )


def service_health() -> dict:
    """Return per-process availability: scrape status, consumer status, uptime, alerts."""
    return dashboard(
        "service-health",
        "Service Health Status",
        "Is every process up and connected?",
        [
            panel(
                "Scrape targets",
                [target("up", "{{job}} {{instance}}", instant=True)],
                kind="stat",
                width=FULL_WIDTH,
                height=6,
                mappings=UP_MAPPING,
                thresholds=[(0, "red"), (1, "green")],
            ),
            panel(
                "Consumers connected (consumer_up)",
                [target("consumer_up", "{{service}} {{instance}}")],
                kind="stat",
                width=12,
                height=5,
                mappings=UP_MAPPING,
                thresholds=[(0, "red"), (1, "green")],
            ),
            panel(
                "Subscribers per service queue",
                [
                    target(
                        'sum by (queue) (rabbitmq_queue_consumers{queue=~"admin|main"})',
                        "{{queue}}",
                    )
                ],
                kind="stat",
                width=12,
                height=5,
                thresholds=[(0, "red"), (1, "green")],
            ),
            panel(
                "Process uptime",
                [target("time() - process_start_time_seconds", "{{job}} {{instance}}")],
                unit="s",
            ),
            panel(
                "Scrape duration",
                [target("scrape_duration_seconds", "{{job}} {{instance}}")],
                unit="s",
            ),
            panel(
                "Firing alerts",
                [target('ALERTS{alertstate="firing"}', "{{alertname}}", instant=True)],
                kind="table",
                width=FULL_WIDTH,
            ),
        ],
    )


def database() -> dict:
    """Return database activity of both services: admin through django-prometheus's database
    wrappers and model mixins (django_db_*, django_model_*), main through SQLAlchemy's engine
    events (sqlalchemy_*, main/app/db_metrics.py)."""
    return dashboard(
        "database",
        "Database Performance",
        "Statements, their duration, errors, connections and writes, per service and process.",
        [
            panel(
                "Statements/s",
                [
                    target(
                        f"sum by (job, vendor) (rate(django_db_execute_total[{RATE}]))",
                        "{{job}} {{vendor}}",
                    ),
                    target(
                        f"sum by (job, vendor) (rate(sqlalchemy_execute_total[{RATE}]))",
                        "{{job}} {{vendor}}",
                    ),
                ],
                unit="ops",
            ),
            panel(
                "Statement duration p95",
                [
                    target(
                        f"histogram_quantile(0.95, sum by (le, job) (rate(django_db_query_duration_seconds_bucket[{RATE}])))",
                        "{{job}} p95",
                    ),
                    target(
                        f"histogram_quantile(0.95, sum by (le, job) (rate(sqlalchemy_query_duration_seconds_bucket[{RATE}])))",
                        "{{job}} p95",
                    ),
                ],
                unit="s",
            ),
            panel(
                "Database errors/s by type",
                [
                    target(
                        or_none(f"sum by (type) (rate(django_db_errors_total[{RATE}]))", "type"),
                        "admin {{type}}",
                    ),
                    target(
                        or_none(f"sum by (type) (rate(sqlalchemy_errors_total[{RATE}]))", "type"),
                        "main {{type}}",
                    ),
                ],
                unit="ops",
            ),
            panel(
                "New connections/s",
                [
                    target(
                        f"sum by (job) (rate(django_db_new_connections_total[{RATE}]))",
                        "{{job}}",
                    ),
                    target(
                        f"sum by (job) (rate(sqlalchemy_new_connections_total[{RATE}]))",
                        "{{job}}",
                    ),
                ],
                unit="ops",
            ),
            panel(
                "Admin writes/s by model",
                [
                    target(
                        f"sum by (model) (rate(django_model_inserts_total[{RATE}]))",
                        "{{model}} insert",
                    ),
                    target(
                        f"sum by (model) (rate(django_model_updates_total[{RATE}]))",
                        "{{model}} update",
                    ),
                    target(
                        f"sum by (model) (rate(django_model_deletes_total[{RATE}]))",
                        "{{model}} delete",
                    ),
                ],
                unit="ops",
            ),
            panel(
                "Main writes/s by table",
                [
                    target(
                        f"sum by (table, operation) (rate(sqlalchemy_table_writes_total[{RATE}]))",
                        "{{table}} {{operation}}",
                    ),
                ],
                unit="ops",
            ),
            panel(
                "Outbox rows pending (both databases)",
                [target("sum by (service) (outbox_pending)", "{{service}}")],
            ),
            panel(
                "Unapplied Django migrations",
                [target("max(django_migrations_unapplied_total)", "unapplied")],
                kind="stat",
                width=6,
                height=4,
                thresholds=[(1, "orange")],
            ),
            panel(
                "Applied Django migrations",
                [target("max(django_migrations_applied_total)", "applied")],
                kind="stat",
                width=6,
                height=4,
            ),
        ],
    )


def api_performance() -> dict:
    """Return request rates and latency percentiles per endpoint."""
    django_bucket = f"rate(django_http_requests_latency_seconds_by_view_method_bucket[{RATE}])"
    flask_bucket = f"rate(flask_http_request_duration_seconds_bucket[{RATE}])"
    return dashboard(
        "api-performance",
        "API Performance Metrics",
        "Throughput and latency per endpoint.",
        [
            panel(
                "p50 / p99 latency by service",
                [
                    target(
                        "service:http_request_duration_seconds:p50_5m",
                        "{{service}} p50",
                    ),
                    target(
                        "service:http_request_duration_seconds:p99_5m",
                        "{{service}} p99",
                    ),
                ],
                unit="s",
                width=FULL_WIDTH,
                thresholds=[(1, "red")],
            ),
            panel(
                "Admin requests/s by view",
                [
                    target(
                        f"sum by (view, method) (rate(django_http_requests_latency_seconds_by_view_method_count[{RATE}]))",
                        "{{method}} {{view}}",
                    )
                ],
                unit="reqps",
            ),
            panel(
                "Main requests/s by path",
                [
                    target(
                        f"sum by (path, method) (rate(flask_http_request_duration_seconds_count[{RATE}]))",
                        "{{method}} {{path}}",
                    )
                ],
                unit="reqps",
            ),
            panel(
                "Admin p95 latency by view",
                [
                    target(
                        f"histogram_quantile(0.95, sum by (le, view) ({django_bucket}))",
                        "{{view}}",
                    )
                ],
                unit="s",
            ),
            panel(
                "Main p95 latency by path",
                [
                    target(
                        f"histogram_quantile(0.95, sum by (le, path) ({flask_bucket}))",
                        "{{path}}",
                    )
                ],
                unit="s",
            ),
            panel(
                "Responses/s by status",
                [
                    target(
                        f"sum by (status) (rate(django_http_responses_total_by_status_view_method_total[{RATE}]))",
                        "admin {{status}}",
                    ),
                    target(
                        f"sum by (status) (rate(flask_http_request_total[{RATE}]))",
                        "main {{status}}",
                    ),
                ],
                unit="reqps",
                width=FULL_WIDTH,
            ),
        ],
    )


def rabbitmq_queues() -> dict:
    """Return broker and per-queue metrics from rabbitmq_prometheus."""
    return dashboard(
        "rabbitmq-queues",
        "RabbitMQ Queue Metrics",
        "Queues admin, main and their dead-letter queues.",
        [
            panel(
                "Messages ready by queue",
                [target("sum by (queue) (rabbitmq_queue_messages_ready)", "{{queue}}")],
            ),
            panel(
                "Messages unacknowledged by queue",
                [target("sum by (queue) (rabbitmq_queue_messages_unacked)", "{{queue}}")],
            ),
            panel(
                "Consumers by queue",
                [target("sum by (queue) (rabbitmq_queue_consumers)", "{{queue}}")],
            ),
            panel(
                "Messages published into queue/s",
                [
                    target(
                        f"sum by (queue) (rate(rabbitmq_queue_messages_published_total[{RATE}]))",
                        "{{queue}}",
                    )
                ],
                unit="ops",
            ),
            panel(
                "Dead-letter queue depth",
                [target(DLQ_READY, "{{queue}}")],
                thresholds=[(1, "red")],
            ),
            panel(
                "Dead-lettered by reason/s",
                [
                    target(
                        f"sum(rate(rabbitmq_global_messages_dead_lettered_rejected_total[{RATE}]))",
                        "rejected",
                    ),
                    target(
                        f"sum(rate(rabbitmq_global_messages_dead_lettered_delivery_limit_total[{RATE}]))",
                        "delivery limit",
                    ),
                ],
                unit="ops",
            ),
            panel(
                "Confirmed / unroutable publishes/s",
                [
                    target(
                        f"sum(rate(rabbitmq_global_messages_confirmed_total[{RATE}]))",
                        "confirmed",
                    ),
                    target(
                        f"sum(rate(rabbitmq_global_messages_unroutable_returned_total[{RATE}]))",
                        "returned",
                    ),
                ],
                unit="ops",
            ),
            panel(
                "Connections and channels",
                [
                    target("sum(rabbitmq_connections)", "connections"),
                    target("sum(rabbitmq_channels)", "channels"),
                ],
            ),
        ],
    )


def errors() -> dict:
    """Return HTTP errors, exceptions and failed events."""
    return dashboard(
        "errors",
        "Error Rate and Exception Tracking",
        "What fails, where and how often.",
        [
            panel(
                "5xx ratio by service",
                [target("service:http_error_ratio:rate5m", "{{service}}")],
                unit="percentunit",
                thresholds=[(0.05, "red")],
            ),
            panel(
                "4xx / 5xx responses/s",
                [
                    target(
                        or_none(
                            f'sum by (status) (rate(django_http_responses_total_by_status_view_method_total{{status=~"[45].."}}[{RATE}]))',
                            "status",
                        ),
                        "admin {{status}}",
                    ),
                    target(
                        or_none(
                            f'sum by (status) (rate(flask_http_request_total{{status=~"[45].."}}[{RATE}]))',
                            "status",
                        ),
                        "main {{status}}",
                    ),
                ],
                unit="reqps",
            ),
            panel(
                "Admin exceptions/s by type",
                [
                    target(
                        or_none(
                            f"sum by (type) (rate(django_http_exceptions_total_by_type_total[{RATE}]))",
                            "type",
                        ),
                        "{{type}}",
                    )
                ],
                unit="ops",
            ),
            panel(
                "Main exceptions/s by method",
                [
                    target(
                        or_none(
                            f"sum by (method) (rate(flask_http_request_exceptions_total[{RATE}]))", "method"
                        ),
                        "{{method}}",
                    )
                ],
                unit="ops",
            ),
            panel(
                "Events dead-lettered/s by type",
                [
                    target(
                        f"sum by (service, type) (rate(events_dead_lettered_total[{RATE}]))",
                        "{{service}} {{type}}",
                    )
                ],
                unit="ops",
            ),
            panel(
                "Duplicate deliveries/s by type",
                [
                    target(
                        f"sum by (service, type) (rate(events_duplicates_total[{RATE}]))",
                        "{{service}} {{type}}",
                    )
                ],
                unit="ops",
            ),
        ],
    )


def resources() -> dict:
    """Return host (node-exporter) and per-process resource usage."""
    return dashboard(
        "resources",
        "Service Resource Usage",
        "CPU, memory, disk and network. The host panels need node-exporter, which only docker compose "
        "runs (make run has none: they stay empty there); the per-process panels work everywhere.",
        [
            panel(
                "Host CPU busy",
                [
                    target(
                        f'1 - avg(rate(node_cpu_seconds_total{{mode="idle"}}[{RATE}]))',
                        "cpu busy",
                    )
                ],
                unit="percentunit",
                thresholds=[(0.9, "red")],
            ),
            panel(
                "Host memory used",
                [
                    target(
                        "1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes",
                        "memory used",
                    )
                ],
                unit="percentunit",
                thresholds=[(0.9, "red")],
            ),
            panel(
                "Disk space free",
                [
                    target(
                        'node_filesystem_avail_bytes{fstype!~"tmpfs|overlay"} / node_filesystem_size_bytes{fstype!~"tmpfs|overlay"}',
                        "{{mountpoint}}",
                    )
                ],
                unit="percentunit",
            ),
            panel(
                "Network traffic",
                [
                    target(
                        f'sum(rate(node_network_receive_bytes_total{{device!="lo"}}[{RATE}]))',
                        "received",
                    ),
                    target(
                        f'sum(rate(node_network_transmit_bytes_total{{device!="lo"}}[{RATE}]))',
                        "sent",
                    ),
                ],
                unit="Bps",
            ),
            panel(
                "CPU by process",
                [
                    target(
                        f"sum by (job) (rate(process_cpu_seconds_total[{RATE}]))",
                        "{{job}}",
                    )
                ],
                unit="percentunit",
            ),
            panel(
                "Resident memory by process",
                [
                    target("sum by (job) (process_resident_memory_bytes)", "{{job}}"),
                    target("sum(rabbitmq_process_resident_memory_bytes)", "rabbitmq"),
                ],
                unit="bytes",
            ),
            panel(
                "Open file descriptors by process",
                [target("sum by (job) (process_open_fds)", "{{job}}")],
            ),
        ],
    )


def event_pipeline() -> dict:
    """Return the publish -> relay -> broker -> apply flow, backlog, freshness SLO and dead letters."""
    fresh_ratio = (
        f"sum(rate({FRESH_BUCKET}[{RATE}]))"
        f' / sum(rate(event_apply_age_seconds_count{{service="main"}}[{RATE}]))'
    )
    return dashboard(
        "event-pipeline",
        "Event Pipeline",
        (
            "Outbox -> relay -> RabbitMQ -> consumer -> replica. Freshness SLO: 99 % of admin edits "
            "visible in the gallery within 2 s."
        ),
        [
            panel(
                "Freshness SLI (applied within 2 s, main)",
                [target(fresh_ratio, "within 2 s")],
                kind="stat",
                unit="percentunit",
                width=6,
                height=5,
                thresholds=[(0, "red"), (0.99, "green")],
            ),
            panel(
                "Error-budget burn rate",
                [
                    target("slo:event_freshness_errors:ratio_rate5m / 0.01", "5m"),
                    target("slo:event_freshness_errors:ratio_rate1h / 0.01", "1h"),
                    target("slo:event_freshness_errors:ratio_rate6h / 0.01", "6h"),
                ],
                unit="x",
                width=18,
                height=5,
                thresholds=[(6, "orange"), (14.4, "red")],
            ),
            panel(
                "Published events/s (relay, confirmed)",
                [
                    target(
                        f"sum by (service, type) (rate(events_published_total[{RATE}]))",
                        "{{service}} {{type}}",
                    )
                ],
                unit="ops",
            ),
            panel(
                "Applied events/s (consumer)",
                [
                    target(
                        f"sum by (service, type) (rate(events_consumed_total[{RATE}]))",
                        "{{service}} {{type}}",
                    )
                ],
                unit="ops",
            ),
            panel(
                "Outbox rows pending",
                [target("sum by (service) (outbox_pending)", "{{service}}")],
            ),
            panel(
                "Oldest pending outbox row age",
                [target("max by (service) (outbox_oldest_age_seconds)", "{{service}}")],
                unit="s",
                thresholds=[(60, "red")],
            ),
            panel(
                "Relay confirm latency p99",
                [
                    target(
                        f"histogram_quantile(0.99, sum by (service, le) (rate(relay_confirm_latency_seconds_bucket[{RATE}])))",
                        "{{service}}",
                    )
                ],
                unit="s",
            ),
            panel(
                "Event age at apply (occurred -> applied)",
                [
                    target(
                        f"histogram_quantile(0.5, sum by (service, le) (rate(event_apply_age_seconds_bucket[{RATE}])))",
                        "{{service}} p50",
                    ),
                    target(
                        f"histogram_quantile(0.99, sum by (service, le) (rate(event_apply_age_seconds_bucket[{RATE}])))",
                        "{{service}} p99",
                    ),
                ],
                unit="s",
                thresholds=[(2, "red")],
            ),
            panel(
                "Service queue backlog (ready)",
                [target(SERVICE_QUEUES_READY, "{{queue}}")],
            ),
            panel(
                "Dead-letter queues (ready)",
                [target(DLQ_READY, "{{queue}}")],
                thresholds=[(1, "red")],
            ),
            panel(
                "Dead letters: depth and oldest age (workbench)",
                [
                    target(DEAD_LETTERS, "{{queue}} depth"),
                    target(DEAD_LETTER_OLDEST_AGE, "{{queue}} oldest age"),
                ],
                description=(
                    "As each service's consumer reports its dead-letter queue: messages waiting (left axis) "
                    "and the age of the oldest, 0 when empty (right axis). Alerts: DeadLettersWaiting "
                    "(any for 5 min, ticket), DeadLettersOld (oldest over 1 h, page). The link opens the "
                    "SPA's dead-letter workbench (set the SPA URL variable above)."
                ),
                links=[WORKBENCH_LINK],
                overrides=[
                    {
                        "matcher": {"id": "byFrameRefID", "options": "B"},
                        "properties": [
                            {"id": "unit", "value": "s"},
                            {"id": "custom.axisPlacement", "value": "right"},
                        ],
                    }
                ],
            ),
            panel(
                "Duplicates / dead-lettered per second",
                [
                    target(
                        f"sum by (service) (rate(events_duplicates_total[{RATE}]))",
                        "{{service}} duplicates",
                    ),
                    target(
                        f"sum by (service) (rate(events_dead_lettered_total[{RATE}]))",
                        "{{service}} dead-lettered",
                    ),
                ],
                unit="ops",
            ),
            panel(
                "Consumers up / replica drift",
                [
                    target("sum by (service) (consumer_up)", "{{service}} consumer_up"),
                    target("max by (kind) (replica_drift)", "drift {{kind}}"),
                ],
            ),
        ],
        variables=[SPA_URL_VARIABLE],
    )


BUILDERS = (
    overview,
    service_health,
    database,
    api_performance,
    rabbitmq_queues,
    errors,
    resources,
    event_pipeline,
)


def render() -> dict[str, str]:
    """Return {file name: JSON text} for every dashboard."""
    return {
        f"{d['uid']}.json": json.dumps(d, indent=2, sort_keys=True) + "\n" for d in (b() for b in BUILDERS)
    }


def main(argv: list[str] | None = None) -> int:
    """Write the dashboards, or with --check report whether the committed ones are current."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1 if grafana/dashboards/ is out of date",
    )
    args = parser.parse_args(argv)
    wanted = render()
    present = {p.name for p in OUT_DIR.glob("*.json")}
    stale = sorted(
        n for n, text in wanted.items() if not (OUT_DIR / n).exists() or (OUT_DIR / n).read_text() != text
    ) + sorted(present - set(wanted))
    if args.check:
        if stale:
            sys.stderr.write(f"out of date: {', '.join(stale)}; run python {Path(__file__).name}\n")
            return 1
        return 0
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for name in present - set(wanted):
        (OUT_DIR / name).unlink()
    for name, text in wanted.items():
        (OUT_DIR / name).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
