"""Lowering a worker process's CPU priority so that it really yields to the process that started it.

``nice`` alone is not enough on Linux with autogroup scheduling (the default on desktop and many
server kernels): a niceness weighs only against the processes of the same session, while each
session gets an equal share of the CPU. A gateway started in a session of its own (as the
supervisor starts every service) would share its session's one share with its niced workers, and
a parser's OCR would still take as much of the machine as the gateway. So a worker starts a
session of its own and lowers that session's priority as well as its own."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def lower_priority(niceness: int) -> None:
    """Make this process (and what it starts) a process group of its own, at ``niceness`` when it
    is above 0. Call it first thing in a freshly started worker, before it starts anything."""
    if niceness <= 0:
        os.setpgid(0, 0)
        return
    os.setsid()  # a group and a session, hence an autogroup, of its own
    os.nice(niceness)
    # The session's autogroup, where the kernel has them: its share then weighs as a process at
    # this niceness would against the other sessions.
    with contextlib.suppress(OSError):
        Path("/proc/self/autogroup").write_text(str(niceness))
