"""Waiting in tests for what the pipeline does asynchronously."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(condition: Callable[[], T], what: str = "condition", timeout: float = 60.0, every: float = 0.2) -> T:
    """The first truthy value ``condition`` returns; fails the test naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"{what}: not reached within {timeout:.0f}s"
        time.sleep(every)
    return value
