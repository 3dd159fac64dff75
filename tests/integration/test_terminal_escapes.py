"""Issue #8 item 16: a minion cannot drive the operator's terminal through its returns.  The human
outputters of `rx` and `rx-run` print control characters as visible escapes; `--out json` (and raw)
keep the exact string; `--allow-control-chars` prints them as they are."""

from __future__ import annotations

import ast
import json

import pytest

from conftest import ListeningFakeMinion
from tests.support.procs import wait_for

EVIL = "\x1b]0;pwned\x07\x1b[2J\x1b[1;1Hall good\rfake\x9b31m\u202eevil"
SHOWN = "\\x1b]0;pwned\\x07\\x1b[2J\\x1b[1;1Hall good\\x0dfake\\x9b31m\\u202eevil"


@pytest.fixture
def evil(fleet):
    """A minion (a fake with its own accepted key) whose every return is EVIL, as a dict key and as a value."""
    fake = ListeningFakeMinion(fleet, "evil", lambda job: None if job.arg == ["warm-up"] else {EVIL: [EVIL]})
    yield fake
    fake.close()


def _rx(box, *args: str):
    r = box.run_cli("rx", "-L", "evil,m1", "test.ping", *args, timeout=60)
    assert r.returncode == 0, r.stderr
    return r


@pytest.mark.parametrize("out, shown", [("nested", SHOWN), ("txt", json.dumps(EVIL)[1:-1])])  # txt prints a map as JSON
def test_rx_human_output_escapes_control_characters(fleet, evil, out, shown):
    r = _rx(fleet, "--out", out)
    assert "\x1b" not in r.stdout and "\x07" not in r.stdout and "\x9b" not in r.stdout and "\u202e" not in r.stdout
    assert shown in r.stdout
    assert "m1" in r.stdout, "the other minion's return is printed as before"


def test_rx_json_and_raw_keep_the_exact_string(fleet, evil):
    assert json.loads(_rx(fleet, "--out", "json").stdout) == {"evil": {EVIL: [EVIL]}, "m1": True}
    raw = [ast.literal_eval(line) for line in _rx(fleet, "--out", "raw").stdout.splitlines()]
    assert {"evil": {EVIL: [EVIL]}} in raw


def test_allow_control_chars_prints_them_as_they_are(fleet, evil):
    assert "\x1b]0;pwned\x07" in _rx(fleet, "--allow-control-chars").stdout


def test_rx_run_lookup_escapes_and_json_stays_exact(fleet, evil):
    jid = _rx(fleet, "--async").stdout.strip()
    looked = wait_for(lambda: (x := fleet.run_cli("rx-run", "jobs.lookup_jid", jid, "--out", "json")).returncode == 0
                      and "evil" in json.loads(x.stdout) and x, what="the fake minion's return in the job cache")
    assert json.loads(looked.stdout)["evil"] == {EVIL: [EVIL]}
    nested = fleet.run_cli("rx-run", "jobs.lookup_jid", jid)
    assert nested.returncode == 0 and "\x1b" not in nested.stdout and SHOWN in nested.stdout
