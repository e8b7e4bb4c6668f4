"""Debian's Chromium, headless, driven by Playwright: a page for the dashboard's tests."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

CHROMIUM = shutil.which("chromium")
# Without the background-networking flags Chromium keeps dialling Google's hosts on this closed network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


@contextmanager
def chromium_page(width: int = 1400, height: int = 1000) -> Iterator:
    """A new page of a headless Chromium (the test is skipped where none is installed)."""
    if CHROMIUM is None:
        pytest.skip("chromium not found: apt-get install chromium (./dev test does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": width, "height": height})
        finally:
            browser.close()
