"""Prometheus configuration and rules pass promtool, and every alert is proven by a unit test."""

from __future__ import annotations

import yaml
from observability.promql import (
    LOCAL_TARGET_KEYS,
    PROM_DIR,
    RULE_FILES,
    promtool,
    render_local_config,
)


def _alert_names() -> set[str]:
    groups = yaml.safe_load((PROM_DIR / "alerts.yml").read_text())["groups"]
    return {rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule}


def _alert_cases() -> list[dict]:
    tests = yaml.safe_load((PROM_DIR / "alerts_test.yml").read_text())["tests"]
    return [case for test in tests for case in test.get("alert_rule_test", [])]


def test_compose_prometheus_config_is_valid():
    result = promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 2 rule files found" in result.stdout


def test_rule_files_are_valid():
    result = promtool("check", "rules", *RULE_FILES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_unit_tests_pass():
    result = promtool("test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_firing_and_a_silent_unit_test():
    cases = _alert_cases()
    fired = {c["alertname"] for c in cases if c.get("exp_alerts")}
    silent = {c["alertname"] for c in cases if not c.get("exp_alerts")}
    names = _alert_names()
    assert {
        "ServiceDown",
        "HighErrorRate",
        "HighLatencyP99",
        "OutboxBacklogAge",
        "DeadLetterQueueNotEmpty",
        "ConsumerMissing",
        "ReplicaDrift",
        "FreshnessSLOBurn",
    } <= names
    assert names - fired == set(), "alerts never shown firing"
    assert names - silent == set(), "alerts never shown silent on healthy series"


def test_unit_tests_name_only_existing_alerts():
    assert {c["alertname"] for c in _alert_cases()} <= _alert_names()


def test_every_alert_has_severity_and_summary():
    for group in yaml.safe_load((PROM_DIR / "alerts.yml").read_text())["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                assert rule["labels"]["severity"] in {"page", "ticket"}, rule["alert"]
                assert rule["annotations"]["summary"], rule["alert"]


def test_local_template_renders_a_valid_config(tmp_path):
    ports = {key: f"127.0.0.1:{9000 + i}" for i, key in enumerate(LOCAL_TARGET_KEYS)}
    config = tmp_path / "prometheus.yml"
    config.write_text(render_local_config(ports))
    result = promtool("check", "config", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_local_template_has_the_same_jobs_as_the_compose_config():
    compose = yaml.safe_load((PROM_DIR / "prometheus.yml").read_text())
    ports = {key: "127.0.0.1:1" for key in LOCAL_TARGET_KEYS}
    local = yaml.safe_load(render_local_config(ports))
    compose_jobs = {j["job_name"] for j in compose["scrape_configs"]} - {
        "prometheus",
        "node-exporter",
    }
    assert {j["job_name"] for j in local["scrape_configs"]} == compose_jobs
    paths = {j["job_name"]: j.get("metrics_path", "/metrics") for j in compose["scrape_configs"]}
    for job in local["scrape_configs"]:
        assert job.get("metrics_path", "/metrics") == paths[job["job_name"]], job["job_name"]
