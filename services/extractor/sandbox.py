"""Parsers run in a child process with a time and a memory limit: a parser that crashes, hangs or
balloons costs one document, never the service. The child is reused across documents and
replaced after any failure of its own."""

from __future__ import annotations

import multiprocessing
import time
from multiprocessing.connection import Connection
from pathlib import Path

from services.extractor.parsers import Extraction, ExtractionLimits, UnextractableDocument, extract


def _serve(conn: Connection) -> None:
    while True:
        try:
            path, limits = conn.recv()
        except EOFError:
            return
        try:
            conn.send(("ok", extract(Path(path), limits)))
        except UnextractableDocument as exc:
            conn.send(("unextractable", str(exc)))
        except Exception as exc:  # noqa: BLE001 - reported to the parent with its type
            conn.send(("unextractable", f"parser failed: {type(exc).__name__}: {exc}"[:500]))


def _rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


class Sandbox:
    def __init__(self, timeout: float = 120.0, memory_limit_mb: int = 2048, limits: ExtractionLimits | None = None):
        self.timeout = timeout
        self.limits = limits or ExtractionLimits()
        self.memory_limit = memory_limit_mb * 1024 * 1024
        self._context = multiprocessing.get_context("spawn")  # no inherited Kafka/Redis sockets
        self._process = None
        self._conn: Connection | None = None

    def _start(self) -> None:
        parent, child = self._context.Pipe()
        self._process = self._context.Process(target=_serve, args=(child,), name="extractor-sandbox", daemon=True)
        self._process.start()
        child.close()
        self._conn = parent

    def extract(self, path: Path) -> Extraction:
        """Extract ``path`` or raise ``UnextractableDocument`` with the reason."""
        if self._process is None or not self._process.is_alive():
            self._start()
        assert self._conn is not None and self._process is not None
        self._conn.send((str(path), self.limits))
        deadline = time.monotonic() + self.timeout
        while not self._conn.poll(0.05):
            if not self._process.is_alive():
                code = self._process.exitcode
                self._discard()
                raise UnextractableDocument(f"parser crashed (exit code {code})")
            if time.monotonic() > deadline:
                self._discard()
                raise UnextractableDocument(f"extraction timed out after {self.timeout:.0f}s")
            rss = _rss_bytes(self._process.pid)
            if rss > self.memory_limit:
                self._discard()
                raise UnextractableDocument(
                    f"extraction exceeded the memory limit ({rss // 2**20} MB > {self.memory_limit // 2**20} MB)"
                )
        try:
            outcome, value = self._conn.recv()
        except EOFError:
            self._discard()
            raise UnextractableDocument("parser crashed while answering") from None
        if outcome == "ok":
            return value
        raise UnextractableDocument(value)

    def _discard(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.join(5)
        if self._conn is not None:
            self._conn.close()
        self._process, self._conn = None, None

    def close(self) -> None:
        self._discard()
