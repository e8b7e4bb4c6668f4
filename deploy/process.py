"""A background process owned through a pid file: start detached, check, stop, read its log."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path


def proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat from the third (state) on; None once the process is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may contain spaces; the fields after its closing ")" don't.
    return raw[raw.rindex(")") + 2 :].split()


def _start_ticks(pid: int) -> str | None:
    fields = proc_stat(pid)
    return fields[19] if fields else None  # field 22 of /proc/PID/stat: start time


def _alive(pid: int) -> bool:
    fields = proc_stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


class ManagedProcess:
    """One named process with ``<run_dir>/<name>.pid`` and ``<log_dir>/<name>.log``.

    The pid file also records the process start time, so a pid reused by an unrelated
    process after a crash is never mistaken for ours (and never signalled).
    """

    def __init__(self, name: str, run_dir: Path, log_dir: Path):
        self.name = name
        self.pid_file = run_dir / f"{name}.pid"
        self.log_file = log_dir / f"{name}.log"
        self._child: subprocess.Popen | None = None  # set when this object started it

    def pid(self) -> int | None:
        """The pid if our process is running, else None (a stale pid file is removed)."""
        try:
            pid_text, ticks = self.pid_file.read_text().split()
            pid = int(pid_text)
        except (FileNotFoundError, ValueError):
            return None
        if _alive(pid) and _start_ticks(pid) == ticks:
            return pid
        self.pid_file.unlink(missing_ok=True)
        return None

    def start(self, command: Sequence[str], env: Mapping[str, str] | None = None, cwd: Path | None = None) -> int:
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(command)}\n".encode())
            log.flush()
            process = subprocess.Popen(
                list(command),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                cwd=cwd,
                start_new_session=True,  # its own process group: stopped as a whole, immune to our Ctrl-C
            )
        self._child = process
        self.pid_file.write_text(f"{process.pid} {_start_ticks(process.pid)}\n")
        return process.pid

    def exit_code(self) -> int | None:
        """Exit status, if this object started the process and it has ended."""
        return self._child.poll() if self._child else None

    def _reap(self) -> None:
        # Our own child lingers as a zombie (and looks alive to kill -0) until waited for.
        if self._child:
            self._child.poll()

    def stop(self, timeout: float = 10.0) -> bool:
        """SIGTERM the process group, SIGKILL it after ``timeout``. True if something was running."""
        pid = self.pid()
        if pid is None:
            return False
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                self._reap()
                if not _alive(pid):
                    break
                time.sleep(0.05)
            if not _alive(pid):
                break
        self._reap()
        self.pid_file.unlink(missing_ok=True)
        return True

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log written)"
        return "\n".join(text.rstrip().splitlines()[-lines:])
