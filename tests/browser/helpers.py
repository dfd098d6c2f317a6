"""Helpers for the browser tests: polling that works under the portal's Content-Security-Policy, screenshots."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import Locator, Page

from tests.portal_server import PASSWORD, ROOT

# Every run saves its screenshots under test-artifacts/ (ignored by git, kept by CI); with
# SAVE_SCREENSHOTS=docs the run refreshes the README's pictures in docs/screenshots/ instead.
SCREENSHOTS = ROOT / ("docs" if os.environ.get("SAVE_SCREENSHOTS") == "docs" else "test-artifacts") / "screenshots"
PROVIDERS = ["bandwidth", "truto", "envoy", "kaleyra", "ameyo"]
__all__ = ["PASSWORD", "PROVIDERS", "SCREENSHOTS", "screenshot", "wait_for"]


def wait_for(
    target: Page | Locator, script: str, predicate: Callable[[Any], bool], what: str, timeout: float = 15.0
) -> Any:
    """Evaluate `script` on `target` until `predicate(value)` holds; return that value.

    Playwright's page.wait_for_function() compiles its predicate inside the page, which `script-src 'self'`
    refuses; evaluate() goes through the DevTools protocol instead, so it is polled from here.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = target.evaluate(script)
        if predicate(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} (within {timeout:g} s); last value: {value!r}")
        time.sleep(0.05)


def screenshot(page: Page, name: str) -> Path:
    """Save the viewport (1280 x 800) as <SCREENSHOTS>/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    # caret="initial": hiding the caret (the default) injects a <style>, which the page's CSP reports as refused.
    page.screenshot(path=path, caret="initial")
    return path
