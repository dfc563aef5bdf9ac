"""Helpers shared by the observability tests: paths, promtool runner, PromQL collection."""

from __future__ import annotations

import json
import re
import shutil
import string
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "grafana-prometheus"
PROM_DIR = MONITORING / "prometheus"
DASHBOARD_DIR = MONITORING / "grafana" / "dashboards"
PROVISIONING = MONITORING / "grafana" / "provisioning"
LOCAL_TEMPLATE = PROM_DIR / "prometheus.local.yml.tmpl"
RULE_FILES = ("recording.yml", "alerts.yml")

# Grafana's built-in interval variables; promtool only parses PromQL, so any valid duration does.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h"}


def promtool(*args: str, cwd: Path = PROM_DIR) -> subprocess.CompletedProcess:
    """Run promtool and return the completed process (stdout and stderr as text)."""
    exe = shutil.which("promtool")
    assert exe, "promtool not installed: apt-get install prometheus"
    return subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def load_dashboards() -> dict[str, dict]:
    """Return {file name: parsed dashboard} for every committed dashboard."""
    return {p.name: json.loads(p.read_text()) for p in sorted(DASHBOARD_DIR.glob("*.json"))}


def dashboard_exprs(dash: dict) -> list[str]:
    """Return every PromQL expression of a dashboard (panel targets, nested rows, template queries)."""
    exprs = []
    stack = list(dash.get("panels", []))
    while stack:
        item = stack.pop()
        stack.extend(item.get("panels", []))
        exprs.extend(t["expr"] for t in item.get("targets", []) if t.get("expr"))
    for var in dash.get("templating", {}).get("list", []):
        query = var.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        if var.get("type") == "query" and query:
            exprs.append(query)
    return exprs


def rule_exprs() -> list[str]:
    """Return every expression of the recording and alerting rules."""
    exprs = []
    for name in RULE_FILES:
        for group in yaml.safe_load((PROM_DIR / name).read_text())["groups"]:
            exprs.extend(rule["expr"] for rule in group["rules"])
    return exprs


def substitute_grafana_variables(expr: str) -> str:
    """Replace Grafana's $__ interval variables by a fixed duration."""
    for var, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(var, value)
    return expr


def render_local_config(ports: dict[str, str], scrape_interval: str = "1s") -> str:
    """Render prometheus.local.yml.tmpl; `ports` maps admin_web, ..., rabbitmq to host:port."""
    template = string.Template(LOCAL_TEMPLATE.read_text())
    return template.substitute(ports, rules_dir=str(PROM_DIR), scrape_interval=scrape_interval)


LOCAL_TARGET_KEYS = (
    "admin_web",
    "admin_consumer",
    "admin_relay",
    "main_web",
    "main_consumer",
    "main_relay",
    "drift_check",
    "rabbitmq",
)


_COMPARISONS = ("==", "!=", ">=", "<=", ">", "<")
_SET_OPERATORS = ("and", "or", "unless")


def _top_level_split(expr: str) -> tuple[list[str], list[tuple[int, str]]]:
    """Return (parts split at top-level and/or/unless, top-level comparison positions of expr)."""
    parts, comparisons, depth, quote, start, i = [], [], 0, "", 0, 0
    while i < len(expr):
        ch = expr[i]
        if quote:
            quote = "" if ch == quote and expr[i - 1] != "\\" else quote
        elif ch in "\"'`":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0:
            word = next(
                (w for w in _SET_OPERATORS if expr.startswith(w, i) and _bounded(expr, i, len(w))), None
            )
            if word:
                parts.append(expr[start:i])
                start = i = i + len(word)
                continue
            op = next((c for c in _COMPARISONS if expr.startswith(c, i)), None)
            if op:  # label matchers (=, =~, !~) sit inside braces, at depth > 0
                comparisons.append((i, op))
                i += len(op)
                continue
        i += 1
    parts.append(expr[start:])
    return [p.strip() for p in parts], comparisons


def _bounded(expr: str, i: int, n: int) -> bool:
    before = expr[i - 1] if i else " "
    after = expr[i + n] if i + n < len(expr) else " "
    return not (before.isalnum() or before in "_:") and not (after.isalnum() or after in "_:")


def data_expressions(expr: str) -> list[str]:
    """Return what an alert's data comes from: its parts at top-level and/or/unless, each without
    its comparison against a threshold, and the argument of absent() (which is empty exactly when
    that series exists)."""
    out = []
    for part in _top_level_split(" ".join(expr.split()))[0]:
        part = re.sub(r"^(on|ignoring)\s*\([^)]*\)\s*", "", part)  # `unless on(x) b`: b
        _, comparisons = _top_level_split(part)
        if comparisons:
            part = part[: comparisons[0][0]].strip()
        if part.startswith("absent(") and part.endswith(")"):
            part = part[len("absent(") : -1].strip()
        out.append(part)
    return out


def alert_rules() -> list[dict]:
    """Return every alerting rule (name, expr)."""
    rules = []
    for group in yaml.safe_load((PROM_DIR / "alerts.yml").read_text())["groups"]:
        rules.extend(rule for rule in group["rules"] if "alert" in rule)
    return rules
