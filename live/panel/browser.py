"""Playwright driving Debian's Chromium (``apt-get install chromium``; a browser download by
``playwright install`` cannot work here): how the panel's browser tests and
`sextant bench --part panel` start a browser. Playwright is a dev dependency."""

from collections.abc import Iterator
from contextlib import contextmanager

CHROMIUM = "/usr/bin/chromium"


@contextmanager
def chromium() -> Iterator[object]:
    """A headless Chromium (Playwright's sync API, usable from any one thread)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()
