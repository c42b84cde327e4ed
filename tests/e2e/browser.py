"""A real headless Chromium for the console's tests: Debian's `chromium`, driven by Playwright.

`make test` installs the package (deploy/local/browser.sh); nothing is downloaded at test time.
The flags keep the browser from reaching the network on its own (updates, sync, QUIC probes).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from playwright.async_api import Browser, async_playwright

CHROMIUM = os.environ.get("ORDERSYNC_CHROMIUM", "/usr/bin/chromium")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """Launch the browser; fail (never skip) with the fix when it is not installed."""
    if not os.access(CHROMIUM, os.X_OK):
        raise RuntimeError(f"{CHROMIUM} not found: `make test` installs Debian's chromium (deploy/local/browser.sh)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=list(FLAGS))
        try:
            yield browser
        finally:
            await browser.close()
