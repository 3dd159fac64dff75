"""Issue #14, the dashboard in a real headless Chromium against a real rx-master, real minions and a real rx-api:
log in, three pings streaming in, a failing command marked, a minion that did not return listed with the reason,
a pending key accepted after its fingerprint is shown, and HTML in a minion id, a grain and a return shown as
text (no element made, no dialog)."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import pytest

from tests.browser.harness import HOSTILE_ID, PASSWORD, USER

pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")
from playwright.sync_api import expect  # noqa: E402


def log_in(page, dash) -> None:
    page.goto(dash.url)
    page.get_by_label("Username").fill(USER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Authentication back end (eauth)").fill("file")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.locator("#stream-state")).to_have_text("events: live")


def run(page, dash, tgt: str, fun: str, args: str = "", tgt_type: str = "list", wait: int = 15) -> None:
    page.goto(f"{dash.url}#/run")
    page.get_by_label("Target", exact=True).fill(tgt)
    page.get_by_label("Target type").select_option(tgt_type)
    page.get_by_label("Function").fill(fun)
    page.get_by_label("Arguments").fill(args)
    page.get_by_label("Wait (seconds)").fill(str(wait))
    page.get_by_role("button", name="Run").click()
    expect(page.locator(".job-state")).to_have_text("Done.")


def test_the_page_has_a_strict_content_security_policy(dash):
    request = urllib.request.Request(dash.url, headers={"Accept": "text/html"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        csp = resp.headers.get("Content-Security-Policy", "")
        html = resp.read().decode()
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "default-src 'none'" in csp, csp
    assert resp.headers.get("X-Content-Type-Options") == "nosniff"
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "an inline script"
    assert not re.search(r"\son[a-z]+\s*=", html), "an inline event handler"


STATIC = Path(__file__).resolve().parents[2] / "api" / "static"
SVG_NS = '"http://www.w3.org/2000/svg"'
HTML_SINKS = re.compile(r"\b(innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval|Function)\b\s*[=(]")


def test_no_dashboard_module_parses_text_as_html_or_code():
    sources = {p.relative_to(STATIC).as_posix(): p.read_text() for p in STATIC.rglob("*.js")}
    assert {"app.js", "dom.js", "pages/run.js"} <= set(sources)
    assert {name: HTML_SINKS.findall(text) for name, text in sources.items() if HTML_SINKS.search(text)} == {}
    for name, text in sources.items():  # every address is relative (rx-api itself); the SVG namespace is a name
        assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", text.replace(SVG_NS, "")), name


def test_log_in_with_the_keyboard(watched, dash):
    page = watched.page
    page.goto(dash.url)
    expect(page.get_by_role("heading", name="Log in to rx")).to_be_visible()
    expect(page.get_by_label("Username")).to_be_focused()
    page.keyboard.type(USER)
    page.keyboard.press("Tab")
    page.keyboard.type("not the password")
    page.keyboard.press("Tab")
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.type("file")
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("Login failed")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Overview")).to_be_focused()
    expect(page.get_by_role("navigation", name="Pages")).to_be_visible()
    expect(page.locator("#stream-state")).to_have_text("events: live")
    assert json.loads(page.evaluate("sessionStorage.getItem('rx.session')"))["user"] == USER
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in to rx")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('rx.session')") is None
    assert watched.dialogs == [] and not [e for e in watched.errors if "401" not in e]


def test_three_pings_stream_in(watched, dash):
    page = watched.page
    log_in(page, dash)
    run(page, dash, "m1,m2,m3", "test.ping")
    ok = page.locator("li.result.ok")
    expect(ok).to_have_count(3)
    assert ok.evaluate_all("els => els.map(e => e.dataset.minion)") == ["m1", "m2", "m3"]
    expect(page.locator(".counts")).to_have_text("3 of 3 returned, 3 ok, 0 failed")
    assert page.locator("ul.results").get_attribute("aria-live") == "polite"
    assert watched.errors == []


def test_the_minion_list_is_filtered_by_the_masters_matcher(watched, dash):
    page = watched.page
    log_in(page, dash)
    page.goto(f"{dash.url}#/minions")
    expect(page.locator("tr[data-minion='m2'] .badge.up")).to_be_visible()
    page.get_by_label("Target", exact=True).fill("L@m1,m3 or m2 and G@os:NoSuchOS")
    page.get_by_label("Target type").select_option("compound")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator(".summary")).to_contain_text("2 minion(s), 2 up matching")
    assert page.locator("tbody tr").evaluate_all("rows => rows.map(r => r.dataset.minion)") == ["m1", "m3"]


def test_a_failing_command_is_marked_failed(watched, dash):
    page = watched.page
    log_in(page, dash)
    run(page, dash, "m1", "cmd.run", "'exit 3'")
    failed = page.locator("li.result.failed[data-minion='m1']")
    expect(failed.locator(".badge")).to_have_text("failed, retcode 3")
    page.locator(".job h2 a").click()
    expect(page.get_by_role("heading", name="Results")).to_be_visible()
    expect(page.locator("li.result.failed[data-minion='m1'] .badge")).to_have_text("failed, retcode 3")
    expect(page.locator("dl.facts")).to_contain_text("cmd.run")


def test_a_minion_that_did_not_return_is_listed_with_the_reason(watched, dash):
    page = watched.page
    dash.accepted_but_stopped("m5")
    log_in(page, dash)
    run(page, dash, "m1,m5", "test.ping", wait=2)
    expect(page.locator("li.result.ok[data-minion='m1']")).to_be_visible()
    gone = page.locator("li.result.missing[data-minion='m5']")
    expect(gone.locator(".badge")).to_have_text("did not return")
    expect(gone.locator("pre")).to_have_text("Minion did not return: it is not connected to the master.")
    expect(page.locator(".counts")).to_have_text("1 of 2 returned, 1 ok, 0 failed, 1 did not return")
    page.locator(".job h2 a").click()
    expect(page.locator("li.result.missing[data-minion='m5'] pre")).to_contain_text("not connected")
    page.goto(f"{dash.url}#/minions")
    row = page.locator("tr[data-minion='m5']")
    expect(row.locator("td").first).to_have_text("down")
    expect(row.locator("td").last).to_have_text(re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$"))  # last seen


def test_a_pending_key_is_accepted_after_its_fingerprint_is_shown(watched, dash):
    page = watched.page
    log_in(page, dash)
    page.goto(f"{dash.url}#/keys")
    pending = page.locator("section.keys", has=page.get_by_role("heading", name="Pending"))
    pending.get_by_role("button", name="Accept m4").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text(dash.fingerprint("m4"))
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert dash.key_state("m4") == "pending"
    pending.get_by_role("button", name="Accept m4").click()
    expect(dialog.locator("code.fingerprint")).to_have_text(dash.fingerprint("m4"))
    dialog.get_by_role("button", name="Accept").click()
    accepted = page.locator("section.keys", has=page.get_by_role("heading", name="Accepted"))
    expect(accepted.locator("tr[data-minion='m4']")).to_be_visible()
    assert dash.key_state("m4") == "accepted"
    page.goto(f"{dash.url}#/minions")  # m4 authenticates again by itself and comes up (the page follows)
    expect(page.locator("tr[data-minion='m4'] .badge.up")).to_be_visible(timeout=30_000)


def test_html_in_a_minion_id_a_grain_and_a_return_is_shown_as_text(watched, dash):
    page = watched.page
    hostile_grain = "<img src=x onerror=alert(2)>"
    hostile_out = "<img src=x onerror=alert(3)><script>alert(4)</script>"
    done = dash.box.run_cli("rx", "m2", "grains.setval", "osfinger", hostile_grain)
    assert done.returncode == 0, done.stderr
    log_in(page, dash)
    page.goto(f"{dash.url}#/keys")
    expect(page.get_by_role("row", name=HOSTILE_ID)).to_be_visible()
    page.goto(f"{dash.url}#/minions")
    expect(page.locator("tr[data-minion='m2'] td").nth(2)).to_have_text(hostile_grain)
    run(page, dash, "m1", "cmd.run", f"\"echo '{hostile_out}'\"")
    expect(page.locator("li.result.ok[data-minion='m1'] pre")).to_have_text(hostile_out)
    page.goto(f"{dash.url}#/events")
    page.get_by_label("Tag filter").fill("rx/job/*/ret/*")
    expect(page.locator("ol.events li").first).to_be_visible()
    page.goto(f"{dash.url}#/jobs")
    expect(page.locator("td.args").first).to_contain_text("<img src=x")
    assert page.evaluate("document.querySelectorAll('img, script:not([src])').length") == 0
    assert watched.dialogs == []


ARGS = [
    ("", [], {}),
    ("'exit 3'", ["exit 3"], {}),
    ("\"echo 'a b'\" x", ["echo 'a b'", "x"], {}),
    ("a\\ b c", ["a b", "c"], {}),
    ("1 -2 1.5 true False null 0644", [1, -2, 1.5, True, False, None, "0644"], {}),
    ("timeout=5 cwd=/tmp 'name=a b'", [], {"timeout": 5, "cwd": "/tmp", "name": "a b"}),
    ("[1,2] '{\"a\":1}' {\"a\":1} [broken", [[1, 2], {"a": 1}, "{a:1}", "[broken"], {}),
    ("<img src=x onerror=y>", ["<img"], {"src": "x", "onerror": "y>"}),
]


def test_the_argument_line_is_parsed_as_the_rx_command_line_does(watched, dash):
    page = watched.page
    page.goto(dash.url)
    got = page.evaluate("async (lines) => { const m = await import('./static/args.js');"
                        " return lines.map((l) => m.parseArgs(l)); }", [line for line, _, _ in ARGS])
    assert got == [{"arg": arg, "kwarg": kwarg} for _, arg, kwarg in ARGS]
    assert page.evaluate("async () => { const m = await import('./static/args.js');"
                         " try { m.parseArgs(\"'open\"); return 'parsed'; } catch (e) { return e.message; } }") \
        == "unclosed ' quote"
