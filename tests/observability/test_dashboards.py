"""Grafana dashboards: generated from build_dashboards.py, well-formed, and every PromQL parses."""

from __future__ import annotations

import importlib.util
import json

import pytest
import yaml
from observability.promql import (
    DASHBOARD_DIR,
    MONITORING,
    PROVISIONING,
    dashboard_exprs,
    load_dashboards,
    promtool,
    rule_exprs,
    substitute_grafana_variables,
)

REQUIRED = {
    "overview",
    "service-health",
    "database",
    "api-performance",
    "rabbitmq-queues",
    "errors",
    "resources",
    "event-pipeline",
}


def _builder():
    spec = importlib.util.spec_from_file_location("build_dashboards", MONITORING / "build_dashboards.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _provisioned_datasource() -> dict:
    config = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    (datasource,) = config["datasources"]
    return datasource


def _panels(dash: dict) -> list[dict]:
    panels, stack = [], list(dash["panels"])
    while stack:
        item = stack.pop()
        panels.append(item)
        stack.extend(item.get("panels", []))
    return panels


def test_committed_dashboards_equal_the_generated_ones():
    generated = _builder().render()
    committed = {p.name: p.read_text() for p in DASHBOARD_DIR.glob("*.json")}
    assert sorted(committed) == sorted(generated)
    for name, text in generated.items():
        assert committed[name] == text, f"{name} is stale: run python grafana-prometheus/build_dashboards.py"


def test_every_required_dashboard_exists_with_a_unique_uid():
    dashboards = load_dashboards()
    uids = [d["uid"] for d in dashboards.values()]
    assert len(uids) == len(set(uids))
    assert REQUIRED <= set(uids)
    for name, dash in dashboards.items():
        assert name == f"{dash['uid']}.json"
        assert dash["title"] and dash["panels"]


def test_panels_have_unique_ids_and_fit_the_grid():
    for name, dash in load_dashboards().items():
        panels = _panels(dash)
        ids = [p["id"] for p in panels]
        assert len(ids) == len(set(ids)), name
        for p in panels:
            pos = p["gridPos"]
            assert 0 <= pos["x"] and pos["x"] + pos["w"] <= 24, (name, p["title"])
            assert p["targets"], (name, p["title"])


def test_every_panel_and_query_uses_the_provisioned_datasource():
    datasource = _provisioned_datasource()
    assert datasource["uid"] == "prometheus" and datasource["type"] == "prometheus"
    for name, dash in load_dashboards().items():
        for p in _panels(dash):
            assert p["datasource"] == {
                "type": "prometheus",
                "uid": datasource["uid"],
            }, (name, p["title"])
            for t in p["targets"]:
                assert t["datasource"]["uid"] == datasource["uid"], (name, p["title"])


def test_dashboard_provider_loads_json_files_from_a_folder():
    config = yaml.safe_load((PROVISIONING / "dashboards" / "dashboards.yml").read_text())
    (provider,) = config["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"].startswith("/")


def _all_exprs() -> list[tuple[str, str]]:
    found = [(f"{name}", expr) for name, dash in load_dashboards().items() for expr in dashboard_exprs(dash)]
    found += [("rules", expr) for expr in rule_exprs()]
    return found


def test_every_promql_expression_parses(tmp_path):
    exprs = _all_exprs()
    assert len(exprs) > 60
    rules = [
        {"record": f"check:expr_{i}", "expr": substitute_grafana_variables(expr)}
        for i, (_, expr) in enumerate(exprs)
    ]
    path = tmp_path / "exprs.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard_exprs", "rules": rules}]}))
    result = promtool("check", "rules", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


def test_the_expression_check_rejects_invalid_promql(tmp_path):
    # Guards the check above: promtool must fail on a broken expression.
    path = tmp_path / "bad.yml"
    path.write_text(
        yaml.safe_dump(
            {
                "groups": [
                    {
                        "name": "g",
                        "rules": [
                            {
                                "record": "check:bad",
                                "expr": "sum by (service (rate(x[1m]))",
                            }
                        ],
                    }
                ]
            }
        )
    )
    assert promtool("check", "rules", str(path), cwd=tmp_path).returncode != 0


@pytest.mark.parametrize("expr", ["rate(x[$__rate_interval])", "increase(y[$__range])"])
def test_grafana_variables_are_substituted(expr):
    assert "$" not in substitute_grafana_variables(expr)


def test_dashboards_use_no_unknown_template_variables():
    for name, dash in load_dashboards().items():
        text = json.dumps([substitute_grafana_variables(e) for e in dashboard_exprs(dash)])
        assert "$" not in text, name
