"""The indexer's refreshes ("completed" means searchable) are spaced by their own cost, so a server
that scans its whole index on each (the embedded one) cannot spend the pipeline's CPU on them."""

from __future__ import annotations

import uuid

import pytest

from services.indexer.refresh import RefreshPacer
from services.runtime.elasticsearch_client import elasticsearch_client
from services.runtime.settings import Settings


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []
        self.woken_after: float | None = None  # the next wait ends early, as if interactive work arrived

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> bool:
        if self.woken_after is not None and self.woken_after < seconds:
            seconds, self.woken_after = self.woken_after, None
            woken = True
        else:
            woken = False
        self.slept.append(seconds)
        self.now += seconds
        return woken


def pacer_costing(seconds: float, budget: float) -> tuple[RefreshPacer, FakeClock, list[list[str]]]:
    """A pacer whose every refresh takes ``seconds`` on a fake clock, and the refreshes it made."""
    clock = FakeClock()
    refreshed: list[list[str]] = []

    def refresh(indices: list[str]) -> None:
        refreshed.append(indices)
        clock.now += seconds

    pacer = RefreshPacer(refresh, interval=1.0, budget=budget, urgent_interval=0.25, clock=clock, wait=clock.sleep)
    return pacer, clock, refreshed


def test_refreshes_take_at_most_their_budget_of_the_time():
    # 0.2 s: what a refresh of a large index costs on the embedded server.
    pacer, clock, refreshed = pacer_costing(0.2, budget=0.05)
    pacer.refresh(["b", "a", "a"])
    assert refreshed == [["a", "b"]] and clock.slept == []  # idle: at once
    started = clock.now - 0.2
    for _ in range(10):
        pacer.refresh(["a"])
    # A busy indexer: one refresh of 0.2 s every 4 s, 5% of its time.
    assert clock.slept == pytest.approx([3.8] * 10)
    assert clock.now - started == pytest.approx(10 * 4.0 + 0.2)
    pacer.refresh([])
    assert len(refreshed) == 11  # nothing completed, nothing refreshed
    clock.now += 10.0
    pacer.refresh(["a"])
    assert len(clock.slept) == 10  # quiet for longer than the spacing: at once again


def test_an_interactive_completion_waits_for_the_urgent_interval_not_the_budget():
    pacer, clock, _ = pacer_costing(0.2, budget=0.05)
    pacer.refresh(["a"])
    pacer.refresh(["a"], urgent=True)  # someone waits for it: 0.05 s, not the budget's 3.8 s
    assert clock.slept == pytest.approx([0.05])
    pacer.refresh(["a"])  # its cost still counts: bulk refreshes keep to the budget after it
    assert clock.slept == pytest.approx([0.05, 3.8])


def test_a_bulk_batch_waiting_for_its_refresh_gets_out_of_interactive_work_s_way():
    pacer, clock, refreshed = pacer_costing(0.2, budget=0.05)
    pacer.refresh(["a"])
    clock.woken_after = 0.5  # an interactive record arrives 0.5 s into the 3.8 s wait
    pacer.refresh(["a"])
    assert clock.slept == pytest.approx([0.5]) and len(refreshed) == 2  # refreshed then, and done
    pacer.refresh(["b"], urgent=True)  # the interactive batch: the urgent interval after that refresh
    assert clock.slept == pytest.approx([0.5, 0.05]) and refreshed[-1] == ["b"]


def test_cheap_refreshes_come_at_most_once_an_interval():
    clock = FakeClock()
    pacer = RefreshPacer(lambda names: None, interval=1.0, budget=0.1, urgent_interval=0.25, clock=clock,
                         wait=clock.sleep)
    pacer.refresh(["a"])
    clock.now += 0.3
    pacer.refresh(["a"])
    assert clock.slept == pytest.approx([0.7])


def test_a_cheap_refresh_is_not_held_back(settings: Settings):
    es = elasticsearch_client(settings)
    index = f"{settings.topic_prefix}pacing-{uuid.uuid4().hex[:8]}"
    es.indices.create(index=index)
    es.index(index=index, id="1", document={"text": "written"}, refresh=False)
    slept: list[float] = []
    pacer = RefreshPacer(lambda names: es.indices.refresh(index=",".join(names)), interval=0.0, budget=0.05,
                         urgent_interval=0.0, wait=lambda seconds: slept.append(seconds) or False)
    pacer.refresh([index])
    assert es.count(index=index)["count"] == 1  # searchable once refresh() returns
    es.index(index=index, id="2", document={"text": "written"}, refresh=False)
    pacer.refresh([index])
    assert es.count(index=index)["count"] == 2
    assert all(seconds < 1.0 for seconds in slept)  # spaced by what the refresh cost, a few ms here
    es.indices.delete(index=index)


def test_a_very_slow_refresh_never_holds_a_batch_past_kafkas_poll_interval():
    pacer, clock, _ = pacer_costing(20.0, budget=0.1)
    pacer.refresh(["a"])
    pacer.refresh(["a"])
    assert clock.slept == pytest.approx([10.0])  # 30 s after the first started, not 200 s
