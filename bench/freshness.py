"""Freshness under load, with priority lanes off (one lane) and on, side by side in one run, each
scenario on a fresh stack of its own (one replica per service):

- idle: one-page documents published through the gateway, publish -> `completed`;
- a backfill alone: one tenant imports generated files of ~900 words (`indexflow ingest`, bulk);
- the same backfill while an editor publishes a one-page document every 5 s: its publish ->
  `completed` against the idle figure, and the backfill's wall time against the backfill alone;
- two tenants: A imports the backfill, B imports 50 files 20 s later: when each completes, and
  A's throughput while B runs against A's throughput alone.

Every import is of files no earlier import had (no embedding is cached for them).

    .venv/bin/python -m bench.freshness [--files 600] [--small 50]
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
import numpy as np

from bench.stacks import own_pipeline
from bench.throughput import generated_files
from schemas import TERMINAL_STATUSES
from schemas.envelope import utc_now
from services.cli.ingest import collect_files, ingest

WIKI = Path(__file__).resolve().parents[2] / "shared" / "eval" / "wiki-testbeds"
EDIT_EVERY_SECONDS = 5.0
B_STARTS_AFTER_SECONDS = 20.0


@dataclass
class Import:
    """One tenant's import: its wall time from the first publish, and when each chunk completed."""

    seconds: float
    chunks: int
    started: datetime
    completions: list[tuple[datetime, int]] = field(default_factory=list)  # (completed at, chunks)

    @property
    def finished(self) -> datetime:
        return max(at for at, _ in self.completions)

    def throughput(self) -> float:
        return self.chunks / self.seconds

    def throughput_between(self, start: datetime, end: datetime) -> float:
        done = sum(n for at, n in self.completions if start <= at <= end)
        return done / max((end - start).total_seconds(), 1e-9)


def run_import(settings, folder: Path, tenant: str, dataset: str) -> Import:
    started = utc_now()
    summary = ingest(settings, collect_files([folder]), dataset, tenant, timeout=3600)
    completions = [(datetime.fromisoformat(s["transitions"]["completed"]), s.get("segment_count") or 0)
                   for s in summary.states if s["status"] == "completed"]
    if summary.completed != summary.documents:
        raise RuntimeError(f"{tenant}: {summary.completed} of {summary.documents} completed ({summary.errors})")
    return Import(summary.seconds, summary.segments, started, completions)


def one_page(http: httpx.Client, dataset: str) -> float:
    """Seconds from publishing a one-page document (interactive, the gateway's default) to `completed`."""
    marker = uuid.uuid4().hex[:10]
    text = f"Edit {marker}: the survey counted seabirds on the cliffs. " * 40
    started = time.monotonic()
    accepted = http.post(f"/v1/datasets/{dataset}/document/create-by-text",
                         json={"name": f"{marker}.txt", "text": text}).json()
    while True:
        state = http.get(f"/v1/datasets/{dataset}/documents/{accepted['document_id']}")
        if state.status_code == 200 and state.json()["status"] in TERMINAL_STATUSES:
            return time.monotonic() - started
        if time.monotonic() - started > 600:
            raise RuntimeError(f"one-page document {accepted['document_id']} not completed after 600 s")
        time.sleep(0.05)  # a tighter poll takes CPU the pipeline under load needs (2 cores)


def editor(http: httpx.Client, stop: threading.Event, latencies: list[float]) -> None:
    while not stop.is_set():
        began = time.monotonic()
        latencies.append(one_page(http, "edits"))
        stop.wait(max(0.0, EDIT_EVERY_SECONDS - (time.monotonic() - began)))


@dataclass
class Figures:
    idle: list[float]
    alone: Import
    with_edits: Import
    edits: list[float]
    a: Import
    b: Import
    b_started: datetime


def english_words() -> list[str] | None:
    """Words of the judged Wikipedia test beds, so generated files read (and tokenise) like English; None
    (made-up words) where ../shared is absent."""
    if not WIKI.is_dir():
        return None
    words: list[str] = []  # every occurrence: drawn at random, words come at their own frequency
    for path in sorted(WIKI.glob("testbed1/document.*"))[:200]:
        words += re.findall(r"[A-Za-z]+", path.read_text(errors="ignore"))
    return words


@contextmanager
def fresh_pipeline(lanes: str) -> Iterator:
    """Every service on an embedded stack of its own, warmed up (models loaded, groups joined). The
    embedded Elasticsearch scans every index it holds on each refresh and search, so a scenario
    run after another on the same servers would be slower for that alone."""
    with own_pipeline(f"freshness-{lanes}", INDEXFLOW_LANES=str(lanes == "on").lower()) as (settings, _):
        with tempfile.TemporaryDirectory() as scratch:
            warm = Path(scratch) / "warm"
            generated_files(warm, 5, uuid.uuid4().hex)
            run_import(settings, warm, "warm", "warm")
        yield settings


def measure(scratch: Path, files: int, small: int, lanes: str) -> Figures:
    vocabulary = english_words()
    tag = f"lanes-{lanes}"

    def fresh(name: str, count: int) -> Path:
        folder = scratch / f"{tag}-{name}"
        # 11 paragraphs of about 80 words: ~900 words a file.
        generated_files(folder, count, f"{tag}-{name}-{uuid.uuid4().hex}", paragraphs=11, vocabulary=vocabulary)
        return folder

    def editor_client(settings) -> httpx.Client:
        return httpx.Client(base_url=settings.gateway_url, headers={"X-Tenant-Id": "editor"}, timeout=60)

    with fresh_pipeline(lanes) as settings:
        idle = [one_page(editor_client(settings), "edits") for _ in range(10)]
        print(f"  [{tag}] idle one page p50 {statistics.median(idle):.2f} s", flush=True)
        alone = run_import(settings, fresh("alone", files), "alone", "backfill")
        print(f"  [{tag}] backfill alone {alone.seconds:.0f} s, {alone.chunks} chunks", flush=True)

    with fresh_pipeline(lanes) as settings:
        stop, edits = threading.Event(), []
        thread = threading.Thread(target=editor, args=(editor_client(settings), stop, edits))
        thread.start()
        with_edits = run_import(settings, fresh("edited", files), "edited", "backfill")
        stop.set()
        thread.join()
        print(f"  [{tag}] backfill with edits {with_edits.seconds:.0f} s, edits p50 {statistics.median(edits):.2f} s",
              flush=True)

    with fresh_pipeline(lanes) as settings:
        a_folder, b_folder = fresh("a", files), fresh("b", small)
        results: dict[str, Import] = {}
        a_thread = threading.Thread(
            target=lambda: results.__setitem__("a", run_import(settings, a_folder, "a", "backfill")))
        a_thread.start()
        time.sleep(B_STARTS_AFTER_SECONDS)
        b_started = utc_now()
        results["b"] = run_import(settings, b_folder, "b", "small")
        a_thread.join()
        print(f"  [{tag}] A {results['a'].seconds:.0f} s, B {results['b'].seconds:.0f} s", flush=True)
    return Figures(idle, alone, with_edits, edits, results["a"], results["b"], b_started)


def p(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def rows_of(f: Figures) -> list[tuple[str, str]]:
    idle50 = statistics.median(f.idle)
    a_during_b = f.a.throughput_between(f.b_started, f.b.finished)
    a_end = (f.a.finished - f.a.started).total_seconds()
    b_end = (f.b.finished - f.a.started).total_seconds()
    return [
        ("one page idle, p50 / p95", f"{idle50:.2f} / {p(f.idle, 95):.2f} s"),
        ("one page during backfill, p50 / p95", f"{statistics.median(f.edits):.2f} / {p(f.edits, 95):.2f} s"),
        ("  / idle p50 (target p50 <= 2x, p95 <= 4x)",
         f"{statistics.median(f.edits) / idle50:.1f}x / {p(f.edits, 95) / idle50:.1f}x"),
        ("backfill alone", f"{f.alone.seconds:.0f} s, {f.alone.throughput():.1f} chunks/s"),
        ("backfill with an edit every 5 s", f"{f.with_edits.seconds:.0f} s"),
        ("  / alone (target <= 1.05x)", f"{f.with_edits.seconds / f.alone.seconds:.2f}x"),
        ("A (backfill) completes, from A's start", f"{a_end:.0f} s"),
        (f"B ({len(f.b.completions)} files, +{B_STARTS_AFTER_SECONDS:.0f} s) completes", f"{b_end:.0f} s"),
        ("A's throughput while B runs / A alone", f"{a_during_b / f.alone.throughput():.2f}"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=600, help="generated files of each backfill")
    parser.add_argument("--small", type=int, default=50, help="generated files of tenant B's import")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        figures = {lanes: measure(Path(scratch), args.files, args.small, lanes) for lanes in ("off", "on")}
    print(f"\n{'figure':48} {'lanes off':>18} {'lanes on':>18}")
    for (name, off), (_, on) in zip(rows_of(figures["off"]), rows_of(figures["on"])):
        print(f"{name:48} {off:>18} {on:>18}")


if __name__ == "__main__":
    main()
