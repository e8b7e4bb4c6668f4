"""Every metric the alert rules and the Grafana dashboard query is one the running services export
(in their /metrics), and the gauges made for them say what the pipeline does: each service's live
processes, each stage's lag per lane, the DLQ's size, the documents by status."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from deploy.supervisor import read_status
from schemas import DocumentStatus
from services.runtime.settings import Settings
from tests.support.gateway import Gateway
from tests.support.monitoring import dashboard_expressions, metric_names, rule_expressions
from tests.support.waiting import wait_for
from topics.catalog import STAGE_INPUTS

# Made by Prometheus itself for every target, not by a service.
PROMETHEUS_MADE = {"up"}
_SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
             "summary": ("_sum", "_count", "_created")}


def exported(url: str) -> tuple[set[str], dict[str, dict[tuple, float]]]:
    """The metric names a /metrics page declares (a labelled family without series yet included,
    with the names of its series), and its samples: name -> sorted labels -> value."""
    names: set[str] = set()
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(httpx.get(url, timeout=10).text):
        names.add(family.name)
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ()))
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return names | set(samples), samples


def metrics_urls(settings: Settings) -> dict[str, str]:
    return {name: f"http://127.0.0.1:{info['metrics_port']}/metrics"
            for name, info in read_status(settings.state_dir).items() if info["metrics_port"]}


def test_every_queried_metric_is_exported_by_a_running_service(pipeline: Settings):
    queried = {
        f"{where}: {name}": name
        for where, expr in {**rule_expressions(), **dashboard_expressions()}.items() for name in metric_names(expr)
    }
    assert len(set(queried.values())) >= 25

    def missing() -> list[str]:
        names = set().union(*(exported(url)[0] for url in metrics_urls(pipeline).values()))
        return sorted(where for where, name in queried.items() if name not in names | PROMETHEUS_MADE)

    # The watchdog's document gauges come with its first sweep that found the projector alive.
    wait_for(lambda: not missing(), "every queried metric exported", timeout=60, every=2)


def test_the_monitoring_gauges_follow_the_pipeline(pipeline: Settings):
    gateway = Gateway(pipeline, tenant="monitored", dataset="gauges")
    accepted = gateway.create_text("gauged.txt", "Grafana draws what Prometheus scrapes. " * 20)
    assert gateway.wait(accepted["document_id"], accepted["revision"])["status"] == "completed"
    urls = metrics_urls(pipeline)

    _, watchdog = exported(urls["watchdog"])
    live = {dict(labels)["service"]: value for labels, value in watchdog["indexflow_live_processes"].items()}
    assert set(live) == set(urls) - {"gateway"} and min(live.values()) >= 1, live

    _, front = exported(urls["gateway"])
    lanes = {(dict(labels)["stage"], dict(labels)["lane"]) for labels in front["indexflow_pipeline_lag"]}
    assert {stage for stage, _ in lanes} == {stage.value for stage in STAGE_INPUTS}
    assert ("embedder", "bulk") in lanes and ("embedder", "interactive") in lanes
    assert front["indexflow_dead_letter_records"][()] >= 0

    def completed_counted() -> float:
        documents = exported(urls["watchdog"])[1].get("indexflow_documents", {})
        assert {dict(labels)["status"] for labels in documents} in (set(), {s.value for s in DocumentStatus})
        return documents.get((("status", "completed"),), 0)

    # Counted at the watchdog's next sweep (every 30 s): the warm-up document and this one at least.
    wait_for(lambda: completed_counted() >= 2, "the completed documents counted", timeout=45, every=2)
