"""The monitoring files, checked with Debian's Prometheus tools (no server runs here): every alert
rule passes its `promtool test rules` cases, the scrape configurations name every service where it
serves /metrics, the dashboard's queries are PromQL, and compose runs Prometheus, Alertmanager and
Grafana on exactly these files."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import yaml

from deploy.supervisor import SERVICES, metrics_ports
from services.runtime.settings import Settings
from tests.support.monitoring import (
    ALERTMANAGER,
    DASHBOARDS,
    GRAFANA,
    PROMETHEUS,
    ROOT,
    RULES,
    dashboard_expressions,
    rule_expressions,
    tool,
)

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def run(*command: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in command], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_every_alert_rule_passes_its_promtool_cases():
    cases = sorted((PROMETHEUS / "tests").glob("*.yml"))
    result = run(tool("promtool"), "test", "rules", *cases, cwd=PROMETHEUS)
    assert result.returncode == 0, result.stdout + result.stderr
    # Every alert has a case in which it fires.
    firing = {
        check["alertname"]
        for case in cases for test in yaml.safe_load(case.read_text())["tests"]
        for check in test.get("alert_rule_test", []) if check.get("exp_alerts")
    }
    assert set(rule_expressions()) - firing == set(), "alerts no case sees fire"


def test_a_wrong_expectation_fails_promtool(tmp_path: Path):
    """The cases really compare: one expected value changed, promtool fails."""
    case = (PROMETHEUS / "tests" / "indexflow_test.yml").read_text()
    assert "extractor dead-letters 10% of its records" in case
    wrong = tmp_path / "wrong_test.yml"
    wrong.write_text(case.replace("extractor dead-letters 10%", "extractor dead-letters 11%")
                     .replace("../rules/indexflow.yml", str(RULES)))
    result = run(tool("promtool"), "test", "rules", wrong, cwd=tmp_path)
    assert result.returncode != 0 and "IndexflowStageErrorRate" in result.stdout + result.stderr


def test_both_prometheus_configurations_and_the_alertmanager_one_are_valid():
    for config in ("prometheus.yml", "prometheus-compose.yml"):
        result = run(tool("promtool"), "check", "config", config, cwd=PROMETHEUS)
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"SUCCESS: {len(rule_expressions())} rules found" in result.stdout, "the rules are loaded"
    result = run(tool("amtool"), "check-config", ALERTMANAGER / "alertmanager.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def _targets(config: dict) -> dict[str, list[str]]:
    """Job -> its static targets, or its DNS names with their port."""
    found: dict[str, list[str]] = {}
    for job in config["scrape_configs"]:
        for static in job.get("static_configs", []):
            found.setdefault(job["job_name"], []).extend(static["targets"])
        for dns in job.get("dns_sd_configs", []):
            found.setdefault(job["job_name"], []).extend(f"{name}:{dns['port']}" for name in dns["names"])
    return found


def test_the_embedded_stack_is_scraped_where_the_supervisor_serves_metrics():
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    defaults = Settings.model_construct()  # the defaults, whatever this test session's environment says
    ports = metrics_ports(defaults, SERVICES)
    assert _targets(config) == {f"indexflow-{name}": [f"127.0.0.1:{port}"] for name, port in ports.items()}


def test_compose_prometheus_scrapes_every_replica_of_every_service():
    config = yaml.safe_load((PROMETHEUS / "prometheus-compose.yml").read_text())
    image_port = re.search(r"INDEXFLOW_METRICS_PORT=(\d+)", (ROOT / "Dockerfile").read_text()).group(1)
    gateway_port = COMPOSE["services"]["gateway"]["ports"][0].split(":")[-1]
    assert _targets(config) == {
        f"indexflow-{name}": [f"{name}:{gateway_port if name == 'gateway' else image_port}"] for name in SERVICES
    }
    for job in config["scrape_configs"]:
        for dns in job.get("dns_sd_configs", []):
            assert dns["type"] == "A", "every replica's address, not one of them"
    (alertmanager,) = [t for a in config["alerting"]["alertmanagers"] for s in a["static_configs"] for t in s["targets"]]
    assert alertmanager == "alertmanager:9093" and "alertmanager" in COMPOSE["services"]


def _mounts(service: str) -> dict[Path, str]:
    """A compose service's bind mounts: the repository path -> where it is mounted."""
    mounts = {}
    for volume in COMPOSE["services"][service]["volumes"]:
        source, target, *_ = volume.split(":")
        if source.startswith("./"):
            mounts[(ROOT / source).resolve()] = target
    return mounts


def test_compose_runs_prometheus_alertmanager_and_grafana_on_these_files():
    prometheus = COMPOSE["services"]["prometheus"]
    etc = _mounts("prometheus")[PROMETHEUS]
    config = next(a.split("=", 1)[1] for a in prometheus["command"] if a.startswith("--config.file="))
    assert Path(config).parent == Path(etc) and (PROMETHEUS / Path(config).name).is_file()

    alertmanager = COMPOSE["services"]["alertmanager"]
    config = next(a.split("=", 1)[1] for a in alertmanager["command"] if a.startswith("--config.file="))
    etc = _mounts("alertmanager")[ALERTMANAGER]
    assert Path(config).parent == Path(etc) and (ALERTMANAGER / Path(config).name).is_file()

    grafana = _mounts("grafana")
    assert grafana[GRAFANA / "provisioning"] == "/etc/grafana/provisioning"
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "indexflow.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == grafana[DASHBOARDS]
    (source,) = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    assert "9090:9090" in prometheus["ports"]


def test_every_dashboard_query_is_promql_on_the_chosen_prometheus(tmp_path: Path):
    expressions = dashboard_expressions()
    assert len(expressions) >= 20
    for path in DASHBOARDS.glob("*.json"):
        dashboard = json.loads(path.read_text())
        (variable,) = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
        assert variable["query"] == "prometheus"
        for panel in dashboard["panels"]:
            if panel["type"] != "row":
                assert panel["datasource"]["uid"] == f"${{{variable['name']}}}", panel["title"]
                assert panel["targets"], panel["title"]
    # promtool parses recording rules: one per query, Grafana's interval given a value.
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": expr.replace("$__rate_interval", "5m")}
        for i, expr in enumerate(expressions.values())
    ]}]}
    (tmp_path / "dashboard.yml").write_text(yaml.safe_dump(rules))
    result = run(tool("promtool"), "check", "rules", tmp_path / "dashboard.yml")
    assert result.returncode == 0, result.stdout + result.stderr
