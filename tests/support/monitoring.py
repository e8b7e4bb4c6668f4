"""The monitoring files (deploy/prometheus, deploy/alertmanager, deploy/grafana), every query
expression in them and the metric names a PromQL expression reads, and Debian's Prometheus tools
that check and run them."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
ALERTMANAGER = ROOT / "deploy" / "alertmanager"
GRAFANA = ROOT / "deploy" / "grafana"
RULES = PROMETHEUS / "rules" / "indexflow.yml"
DASHBOARDS = GRAFANA / "dashboards"

# What an identifier in PromQL can be besides a metric: keywords, aggregation operators (they may
# be followed by `by (...)` rather than a parenthesis) and the special float values.
_NOT_METRICS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk",
    "quantile", "inf", "nan",
}
_STRINGS = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_LABEL_LISTS = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_NUMBERS = re.compile(r"(?<![\w:])\d+(\.\d+)?([eE][+-]?\d+)?[smhdwy]?")
_IDENTIFIERS = re.compile(r"(?<![\w:$])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?")


def tool(name: str) -> str:
    """The path of one of Debian's Prometheus programs (prometheus, promtool, amtool)."""
    path = shutil.which(name)
    assert path, f"{name} is missing: ./dev test installs it (Debian's prometheus and prometheus-alertmanager)"
    return path


def metric_names(expr: str) -> set[str]:
    """Every metric an expression selects: identifiers that are no function call, keyword or label,
    outside strings, label matchers, ranges and label lists."""
    text = _STRINGS.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = _LABEL_LISTS.sub(" ", text)
    text = _NUMBERS.sub(" ", text)
    return {name for name, call in _IDENTIFIERS.findall(text) if not call and name.lower() not in _NOT_METRICS}


def rule_expressions() -> dict[str, str]:
    """Alert name -> its expression."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["alert"]: rule["expr"] for group in groups for rule in group["rules"]}


def dashboard_expressions() -> dict[str, str]:
    """'dashboard / panel / refId' -> the query's expression, every panel of every dashboard file."""
    found = {}
    for path in sorted(DASHBOARDS.glob("*.json")):
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                found[f"{path.name} / {panel['title']} / {target['refId']}"] = target["expr"]
    return found
