"""Whether the servers the gateway needs answer, checked in the background every couple of seconds
so a probe is answered at once from the last result: a check that waits on a server that does not
answer (Kafka's metadata request waits 2 s) must not outlast a probe's timeout."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

CHECK_EVERY_SECONDS = 2.0


class DependencyChecks:
    def __init__(self, checks: dict[str, Callable[[], bool]], every: float = CHECK_EVERY_SECONDS):
        self._checks = checks
        self._every = every
        self._results: dict[str, bool] = {}
        self._first = threading.Event()
        self._started = False
        self._lock = threading.Lock()

    def results(self) -> dict[str, bool]:
        """Each dependency's last answer (the first ones waited for, once)."""
        with self._lock:
            if not self._started:
                self._started = True
                threading.Thread(target=self._run, name="dependency checks", daemon=True).start()
        self._first.wait(timeout=self._every)
        return {name: self._results.get(name, False) for name in self._checks}

    def _run(self) -> None:
        running: dict[str, threading.Thread] = {}
        while True:
            deadline = time.monotonic() + self._every
            for name, check in self._checks.items():
                if name in running and running[name].is_alive():
                    self._results[name] = False  # its last check still waits: not answering
                    continue
                # Each on a thread of its own: a slow one never holds the others' answers back.
                running[name] = threading.Thread(target=self._check, args=(name, check), daemon=True)
                running[name].start()
            for thread in running.values():
                thread.join(max(0.0, deadline - time.monotonic()))
            self._first.set()
            time.sleep(max(0.0, deadline - time.monotonic()))

    def _check(self, name: str, check: Callable[[], bool]) -> None:
        try:
            self._results[name] = bool(check())
        except Exception:  # noqa: BLE001 - any failure means not answering
            self._results[name] = False
