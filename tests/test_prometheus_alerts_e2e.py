"""Debian's Prometheus, with indexflow's alert rules and scrape configuration, against stage
processes of this test's own on the embedded stack: a stopped stage fires its no-heartbeat alert,
and the alert resolves once the stage is back."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import yaml

from services.runtime.settings import Settings
from tests.conftest import free_port
from tests.support.waiting import wait_for
from tests.support.monitoring import PROMETHEUS, tool

ALERT = "IndexflowServiceWithoutHeartbeat"
STAGE = "splitter"


def start_service(name: str, metrics_port: int, log_dir: Path) -> subprocess.Popen:
    with open(log_dir / f"{name}.log", "ab") as log:
        return subprocess.Popen([sys.executable, "-m", f"services.{name}"], stdin=subprocess.DEVNULL,
                                stdout=log, stderr=log,
                                env=dict(os.environ, INDEXFLOW_METRICS_PORT=str(metrics_port)))


def stop(process: subprocess.Popen) -> None:
    process.terminate()  # gracefully: the stage takes its heartbeat away as it leaves
    process.wait(30)


@contextmanager
def prometheus(ports: dict[str, int], directory: Path) -> Iterator[str]:
    """Prometheus on the shipped configuration, scraping only ``ports`` (service -> its metrics
    port) every second and evaluating the rules every second; yields its URL."""
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(PROMETHEUS / pattern) for pattern in config["rule_files"]]
    jobs = {f"indexflow-{service}": port for service, port in ports.items()}
    config["scrape_configs"] = [
        {**job, "static_configs": [{"targets": [f"127.0.0.1:{jobs[job['job_name']]}"]}]}
        for job in config["scrape_configs"] if job["job_name"] in jobs
    ]
    assert len(config["scrape_configs"]) == len(ports), "a service the shipped configuration does not scrape"
    (directory / "prometheus.yml").write_text(yaml.safe_dump(config))
    address = f"127.0.0.1:{free_port()}"
    with open(directory / "prometheus.log", "ab") as log:
        process = subprocess.Popen(
            [tool("prometheus"), f"--config.file={directory / 'prometheus.yml'}",
             f"--storage.tsdb.path={directory / 'data'}", f"--web.listen-address={address}"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
        )
    url = f"http://{address}"
    try:
        wait_for(lambda: _answers(f"{url}/-/ready"), "Prometheus ready", timeout=30)
        yield url
    finally:
        process.terminate()
        process.wait(30)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def alert_state(url: str, service: str) -> str | None:
    """The state of the no-heartbeat alert of ``service`` (pending, firing), None when there is none."""
    alerts = httpx.get(f"{url}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
    states = [a["state"] for a in alerts if a["labels"]["alertname"] == ALERT and a["labels"].get("service") == service]
    return states[0] if states else None


def live_processes(url: str, service: str) -> float | None:
    query = f'indexflow_live_processes{{service="{service}"}}'
    result = httpx.get(f"{url}/api/v1/query", params={"query": query}, timeout=5).json()["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def test_a_stopped_stage_fires_its_alert_and_clears_once_back(pipeline_topics: Settings, tmp_path: Path):
    ports = {STAGE: free_port(), "watchdog": free_port()}
    stage = start_service(STAGE, ports[STAGE], tmp_path)
    watchdog = start_service("watchdog", ports["watchdog"], tmp_path)
    try:
        with prometheus(ports, tmp_path) as url:
            wait_for(lambda: live_processes(url, STAGE) == 1, f"{STAGE} live, scraped from the watchdog", timeout=60)
            # The rules are evaluated on these series: the extractor, never started here, is seen.
            wait_for(lambda: alert_state(url, "extractor"), "the extractor's alert pending", timeout=10)
            assert alert_state(url, STAGE) is None

            stop(stage)
            # The rule's `for: 30s` holds it pending first: a restart within seconds pages nobody.
            wait_for(lambda: alert_state(url, STAGE) == "pending", f"{ALERT} pending for {STAGE}", timeout=15)
            pending = time.monotonic()
            wait_for(lambda: alert_state(url, STAGE) == "firing", f"{ALERT} firing for {STAGE}", timeout=45)
            assert time.monotonic() - pending >= 25

            stage = start_service(STAGE, ports[STAGE], tmp_path)
            wait_for(lambda: alert_state(url, STAGE) is None, f"{ALERT} resolved for {STAGE}", timeout=60)
            assert live_processes(url, STAGE) == 1
    finally:
        for process in (stage, watchdog):
            if process.poll() is None:
                stop(process)
