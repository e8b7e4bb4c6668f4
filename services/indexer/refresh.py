"""Refreshes that make completed documents searchable, paced so they cannot eat the pipeline.

"Completed" means searchable, so a batch that completes a revision refreshes the indices it wrote
before saying so. Refreshes are spaced by at least ``interval`` (Elasticsearch's own default
refresh interval, 1 s), and by more when they are costly, so that they take at most ``budget`` of
the time: a refresh is cheap on Elasticsearch but scans the whole index on the embedded server
(0.14 s of CPU at 10,000 chunks; refreshing for every completed document cost it 8 ms of CPU per
chunk indexed, a fifth of the machine). On an idle pipeline a document refreshes at once; under
load each refresh covers every revision completed since the last one.

Someone waits for an interactive document, so a refresh that completes one comes a short
``urgent_interval`` after the last (not the interval, not the budget; its cost still spaces the
bulk refreshes after it), and a bulk batch waiting for its refresh stops waiting when interactive
records arrive: it refreshes at once and gets out of their way. Measured under a backfill, the
interactive document had waited up to 1.8 s in the indexer for the two (bench/freshness.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

# The longest a batch is held for a refresh: far inside Kafka's max.poll.interval.ms (300 s), past
# which the indexer would be taken for dead; a server this slow to refresh gets more than the budget.
MAX_SPACING_SECONDS = 30.0


class RefreshPacer:
    def __init__(
        self, refresh: Callable[[list[str]], None], interval: float, budget: float, urgent_interval: float,
        clock: Callable[[], float] = time.monotonic, wait: Callable[[float], bool] = threading.Event().wait,
    ):
        """``wait(seconds)`` sleeps, and answers True when woken early because interactive work
        waits (the loop's ``Context.give_way``)."""
        self._refresh = refresh
        self._interval = interval
        self._budget = budget
        self._urgent_interval = urgent_interval
        self._clock = clock
        self._wait = wait
        self._not_before = float("-inf")
        self._last_started = float("-inf")

    def refresh(self, indices: Iterable[str], urgent: bool = False) -> None:
        names = sorted(set(indices))
        if not names:
            return
        not_before = min(self._not_before, self._last_started + self._urgent_interval) if urgent else self._not_before
        wait = not_before - self._clock()
        if wait > 0:
            self._wait(wait)  # what completes meanwhile waits in Kafka, then comes as one batch
        started = self._last_started = self._clock()
        self._refresh(names)
        took = self._clock() - started
        self._not_before = started + min(max(self._interval, took / self._budget), MAX_SPACING_SECONDS)
