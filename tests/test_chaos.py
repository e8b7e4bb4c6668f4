"""The chaos run, small: 40 documents with updates and deletes mixed in, a random service SIGKILLed
every 2 s, Elasticsearch and the state Redis killed and restarted once each. Every document must
end terminal with exactly the chunks of an undisturbed run (0 missing, 0 extra, 0 stale) and the
reconciler must find the states agreeing with the index. bench/chaos.py on its own stack (ports
and state directory of its own); the full-size run is `python -m bench.chaos`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_sigkills_and_server_restarts_leave_the_same_chunks_as_a_calm_run():
    # Nothing of the test session's stack leaks in: the run configures its own.
    env = {k: v for k, v in os.environ.items() if not k.startswith("INDEXFLOW_")}
    run = subprocess.run(
        [sys.executable, "-m", "bench.chaos", "--documents", "40", "--kill-every", "2", "--timeout", "420"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )
    report = run.stdout + run.stderr[-3000:]
    assert run.returncode == 0 and "IDENTICAL" in run.stdout, report
    assert "missing in chaos run: 0, extra: 0, stale: 0" in run.stdout, report
