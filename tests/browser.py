"""Debian's Chromium, headless, for the tests that drive a web page (real browser, no mocks)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "headless_chromium"]

CHROMIUM = Path("/usr/bin/chromium")
# Headless as root, and quiet: without the background-networking flags Chromium keeps
# reaching for Google's hosts, which this closed network refuses.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


@contextmanager
def headless_chromium() -> Iterator[Browser]:
    """A launched Chromium, closed after; fails (never skips) when it is not installed."""
    if not CHROMIUM.exists():
        # Never skip: a missing browser must be loud (make test and CI install it).
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()
