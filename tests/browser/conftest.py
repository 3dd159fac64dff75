"""Fixtures of the browser tests: one fleet and rx-api (tests/browser/harness.py) and one Chromium for the
whole module; a fresh browser context (no session, no storage) for each test.  Without playwright or a
Chromium the tests skip and say why (`make test` installs both)."""

from __future__ import annotations

import os
import signal
from typing import Any, Iterator

import pytest

from tests.browser.harness import Dash, close_dash, find_browser, launch, open_dash
from tests.support.procs import processes_mentioning


@pytest.fixture(scope="module")
def chromium() -> str:
    path, why = find_browser()
    if path is None:
        pytest.skip(f"the dashboard's browser tests need a browser: {why}")
    return path


@pytest.fixture(scope="module")
def dash(chromium: str) -> Iterator[Dash]:
    dash = open_dash()
    root = str(dash.box.root)
    try:
        yield dash
    finally:
        close_dash(dash)
        leftovers = processes_mentioning(root)
        for pid in leftovers:
            os.kill(pid, signal.SIGKILL)
    assert not leftovers, f"processes left running after the browser tests: {leftovers}"


@pytest.fixture(scope="module")
def browser(chromium: str, dash: Dash) -> Iterator[Any]:
    """Started after the fleet: Playwright's sync API keeps an asyncio loop running in this thread, where the
    sandbox's own asyncio.run calls would fail."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        browser = launch(playwright, chromium)
        try:
            yield browser
        finally:
            browser.close()


class Watched:
    """A page and what it did that a test must not miss: dialogs (alert/confirm/prompt) and script errors."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("console", lambda msg: self.errors.append(msg.text) if msg.type == "error" else None)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()


@pytest.fixture
def watched(browser: Any, dash: Dash) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(15_000)
    try:
        yield Watched(context.new_page())
    finally:
        context.close()
