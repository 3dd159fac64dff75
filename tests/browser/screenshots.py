"""Screenshots of each dashboard page for the README: `python -m tests.browser.screenshots [--out docs/img]`.

Starts the same fleet as the browser tests (tests/browser/harness.py, without the hostile key), runs a few
jobs so the pages have something to show, logs in through the form, and saves one PNG per page."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tests.browser.harness import PASSWORD, USER, close_dash, find_browser, launch, open_dash

SETTLED = 31.0
"""Seconds after which the overview counts a job's missing minions as failures (pages/overview.js SETTLE_MS)."""


def _jobs(dash) -> float:
    for args in (["*", "test.ping"], ["m1", "cmd.run", "exit 3"], ["*", "grains.item", "os", "osrelease"],
                 ["m2", "cmd.run", "uptime"]):
        done = dash.box.run_cli("rx", *args)
        if done.returncode not in (0, 1, 11):
            raise SystemExit(f"rx {' '.join(args)} failed: {done.stderr}")
    return time.monotonic()


def shoot(out: Path) -> list[Path]:
    from playwright.sync_api import expect, sync_playwright
    path, why = find_browser()
    if path is None:
        raise SystemExit(f"cannot take screenshots: {why}")
    out.mkdir(parents=True, exist_ok=True)
    saved: list[Path] = []
    dash = open_dash(hostile=False)
    try:
        ran = _jobs(dash)
        with sync_playwright() as playwright:
            browser = launch(playwright, path)
            page = browser.new_page(viewport={"width": 1280, "height": 800}, color_scheme="light")
            page.set_default_timeout(20_000)

            def save(name: str) -> None:
                page.wait_for_timeout(300)  # let the last paint land
                target = out / f"dashboard-{name}.png"
                page.screenshot(path=str(target), full_page=False)
                saved.append(target)

            page.goto(dash.url)
            page.get_by_label("Username").fill(USER)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_label("Authentication back end (eauth)").fill("file")
            save("login")
            page.get_by_role("button", name="Log in").click()
            expect(page.get_by_role("heading", name="Overview")).to_be_visible()
            page.goto(f"{dash.url}#/minions")
            expect(page.locator("tr[data-minion='m1'] .badge.up")).to_be_visible()
            save("minions")
            page.goto(f"{dash.url}#/run")
            page.get_by_label("Target", exact=True).fill("*")
            page.get_by_label("Function").fill("cmd.run")
            page.get_by_label("Arguments").fill("'uname -sr'")
            page.get_by_role("button", name="Run").click()
            expect(page.locator(".job-state")).to_have_text("Done.")
            save("run")
            page.goto(f"{dash.url}#/jobs")
            expect(page.locator("tbody tr").first).to_be_visible()
            save("jobs")
            page.locator("tbody tr", has_text="exit 3").first.get_by_role("link").click()
            expect(page.get_by_role("heading", name="Results")).to_be_visible()
            save("job")
            page.goto(f"{dash.url}#/keys")
            page.get_by_role("button", name="Accept m4").click()
            expect(page.locator("code.fingerprint")).to_be_visible()
            save("keys")
            page.keyboard.press("Escape")
            page.goto(f"{dash.url}#/events")
            dash.box.run_cli("rx", "*", "test.ping")
            expect(page.locator("ol.events li").first).to_be_visible()
            save("events")
            page.wait_for_timeout(max(0.0, ran + SETTLED - time.monotonic()) * 1000)
            page.goto(f"{dash.url}#/overview")
            expect(page.locator(".stat-value").first).to_be_visible()
            save("overview")
            browser.close()
    finally:
        close_dash(dash)
    return saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/img"), help="where the PNG files go (docs/img)")
    args = parser.parse_args(argv)
    for path in shoot(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
