"""The dashboard's ring buffer of pipeline samples: an hour of them and no more, each with the
latency percentiles of the documents completed since the sample before."""

from __future__ import annotations

from services.gateway.pipeline_history import PipelineHistory


def snapshot(at: float, lag: int) -> dict:
    return {"at": at, "dead_letters": 0,
            "stages": [{"stage": "indexer", "lag": lag, "per_second": 1.5, "lanes": [], "replicas": 1}]}


def test_an_hour_of_samples_is_kept_and_older_ones_drop_out():
    history = PipelineHistory(every_seconds=10)
    for n in range(400):
        history.add(snapshot(float(n * 10), lag=n))
    samples = history.samples()
    assert len(samples) == 360
    assert [s["stages"]["indexer"]["lag"] for s in samples] == list(range(40, 400))
    assert samples[-1]["stages"]["indexer"] == {"lag": 399, "per_second": 1.5}


def test_each_sample_has_the_latencies_of_the_documents_completed_since_the_one_before():
    history = PipelineHistory(every_seconds=10)
    for latency in [0.4, 3.0, 0.2, 0.9, 1.1, 0.5, 0.7, 0.3, 0.8, 0.6]:
        history.completed(latency)
    history.add(snapshot(0.0, lag=0))
    history.add(snapshot(10.0, lag=0))
    first, second = history.samples()
    assert first["completed"] == 10 and first["latency"] == {"p50": 0.6, "p95": 3.0, "max": 3.0}
    assert second["completed"] == 0 and second["latency"] is None
