"""Parsers run in a child process with a time and a memory limit: a parser that crashes, hangs or
balloons costs one document, never the service. The child is reused across documents and
replaced after any failure of its own.

The child leads a process group of its own and everything it starts (Tesseract) belongs to it: the
memory limit counts the whole group, and a kill ends the whole group. The time limit is per step:
a document that reports progress (an OCR'd page) gets ``timeout`` again for its next page, up to
``max_seconds`` in all, so a 300-page scan is not cut off while a hung parser still is. A caller
that no longer wants the answer (``stop`` set) has the child killed at once."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path

from services.extractor.options import ExtractionLimits, ExtractionOptions, Progress, no_progress
from services.extractor.parsers import Extraction, UnextractableDocument, extract
from services.runtime.priority import lower_priority


class ExtractionStopped(Exception):
    """The caller set ``stop``: the extraction was killed, there is no answer."""


def _serve(conn: Connection, niceness: int) -> None:
    lower_priority(niceness)  # a group of its own, which its OCR processes join at its priority

    def progress(done: int, total: int) -> None:
        conn.send(("progress", (done, total)))

    while True:
        try:
            path, limits, options = conn.recv()
        except EOFError:
            return
        try:
            conn.send(("ok", extract(Path(path), limits, options, progress)))
        except UnextractableDocument as exc:
            conn.send(("unextractable", str(exc)))
        except Exception as exc:  # noqa: BLE001 - reported to the parent with its type
            conn.send(("unextractable", f"parser failed: {type(exc).__name__}: {exc}"[:500]))


def _group_rss_bytes(group: int) -> int:
    """The resident memory of every process in the group: the parser and what it started."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == group:  # pgrp, the 5th field of stat
                total += int(fields[21]) * os.sysconf("SC_PAGE_SIZE")  # rss, the 24th, in pages
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
    return total


class Sandbox:
    def __init__(self, timeout: float = 120.0, memory_limit_mb: int = 2048, limits: ExtractionLimits | None = None,
                 max_seconds: float = 3600.0, niceness: int = 0):
        self.timeout = timeout
        self.niceness = niceness  # above 0: the parser yields the CPU to whatever else runs here
        self.max_seconds = max_seconds
        self.limits = limits or ExtractionLimits()
        self.memory_limit = memory_limit_mb * 1024 * 1024
        self._context = multiprocessing.get_context("spawn")  # no inherited Kafka/Redis sockets
        self._process = None
        self._conn: Connection | None = None

    def _start(self) -> None:
        parent, child = self._context.Pipe()
        self._process = self._context.Process(target=_serve, args=(child, self.niceness), name="extractor-sandbox", daemon=True)
        self._process.start()
        child.close()
        self._conn = parent

    def extract(self, path: Path, options: ExtractionOptions = ExtractionOptions(),
                progress: Progress = no_progress, stop: threading.Event | None = None) -> Extraction:
        """Extract ``path`` or raise ``UnextractableDocument`` with the reason (``ExtractionStopped``
        once ``stop`` is set)."""
        if self._process is None or not self._process.is_alive():
            self._start()
        assert self._conn is not None and self._process is not None
        self._conn.send((str(path), self.limits, options))
        started = time.monotonic()
        deadline = started + self.timeout
        while True:
            while not self._conn.poll(0.2):
                if stop is not None and stop.is_set():
                    self._discard()
                    raise ExtractionStopped(str(path))
                self._check(started, deadline)
            try:
                outcome, value = self._conn.recv()
            except EOFError:
                self._discard()
                raise UnextractableDocument("parser crashed while answering") from None
            if outcome != "progress":
                break
            deadline = min(time.monotonic() + self.timeout, started + self.max_seconds)
            progress(*value)
        if outcome == "ok":
            return value
        raise UnextractableDocument(value)

    def _check(self, started: float, deadline: float) -> None:
        assert self._process is not None
        if not self._process.is_alive():
            code = self._process.exitcode
            self._discard()
            raise UnextractableDocument(f"parser crashed (exit code {code})")
        now = time.monotonic()
        if now > deadline:
            self._discard()
            if now - started >= self.max_seconds:
                raise UnextractableDocument(
                    f"extraction took over {self.max_seconds:.0f}s (INDEXFLOW_EXTRACTOR_MAX_SECONDS)")
            raise UnextractableDocument(f"extraction timed out after {self.timeout:.0f}s without progress")
        rss = _group_rss_bytes(self._process.pid)
        if rss > self.memory_limit:
            self._discard()
            raise UnextractableDocument(
                f"extraction exceeded the memory limit ({rss // 2**20} MB > {self.memory_limit // 2**20} MB)"
            )

    @property
    def process_group(self) -> int | None:
        """The sandbox's process group, which its OCR processes join (None while none runs)."""
        return self._process.pid if self._process is not None else None

    def _discard(self) -> None:
        if self._process is not None:
            try:
                os.killpg(self._process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self._process.kill()  # not yet leading its group
            self._process.join(5)
        if self._conn is not None:
            self._conn.close()
        self._process, self._conn = None, None

    def close(self) -> None:
        self._discard()
