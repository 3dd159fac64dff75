"""rx's LocalClient against Salt's, on real daemons: every scenario of tests/support/lc_contract.py gives
on rx what it gave on Salt 3007 (recorded in data/salt_localclient.json by tests/support/salt_shapes.py, run
by hand), and a script written for Salt's LocalClient (data/salt_script.py) runs unchanged and prints what
it printed on Salt.  Then what rx adds on purpose: `rx_reasons`, its keywords, and the errors it raises
where Salt quietly matches nothing.

The fleet is Salt's: m1 and m2 running, m3 accepted but not running, no m9.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from rx.client import LocalClient
from rx.client.results import BadRequest
from tests.support import lc_contract
from tests.support.sandbox import Sandbox

DATA = Path(__file__).resolve().parent / "data"
RECORD = json.loads((DATA / "salt_localclient.json").read_text())


@pytest.fixture(scope="module")
def salt_fleet(module_sandbox: Sandbox) -> Sandbox:
    module_sandbox.start_master()
    module_sandbox.start_minions(["m1", "m2"])
    module_sandbox.preaccept("m3")
    return module_sandbox


@pytest.fixture(scope="module")
def client(salt_fleet: Sandbox) -> Iterator[LocalClient]:
    with LocalClient(str(salt_fleet.master_dir / "master")) as c:  # Salt's c_path: the config file
        yield c


def test_every_scenario_is_recorded():
    assert sorted(lc_contract.SCENARIOS) == sorted(RECORD["scenarios"]), "run tests/support/salt_shapes.py"


@pytest.mark.parametrize("name", sorted(lc_contract.SCENARIOS))
def test_as_salt(client, name):
    assert lc_contract.run(client, [name])[name] == RECORD["scenarios"][name]


def test_a_script_written_for_salt_runs_unchanged(salt_fleet):
    r = subprocess.run([sys.executable, str(DATA / "salt_script.py"), str(salt_fleet.master_dir / "master")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == RECORD["script"]["stdout"].splitlines()


def test_rx_reasons_say_why_a_minion_did_not_return(salt_fleet):
    with LocalClient(cfg=salt_fleet.cfg, rx_reasons=True) as c:
        fast = {"timeout": 1, "gather_job_timeout": 1}
        items = lc_contract.chunks(c.cmd_iter("m1,m3,m9", "test.ping", tgt_type="list", expect_minions=True, **fast))
        assert items == [{"m1": {"jid": "<jid>", "ret": True, "retcode": 0}},
                         {"m3": {"failed": True, "reason": "not connected"}},
                         {"m9": {"failed": True, "reason": "no accepted key"}}]
        cli = {m: r for i in c.cmd_cli("m1,m3", "test.ping", tgt_type="list", verbose=False, expect_minions=True,
                                       **fast) for m, r in i.items()}
        assert cli["m3"] == {"out": "no_return", "ret": "Minion did not return. [not connected]", "retcode": 1,
                             "reason": "not connected"}
        assert c.cmd("m1,m3", "test.ping", tgt_type="list", **fast) == {"m1": True, "m3": False}


def test_rx_keywords_pass_and_others_are_named(client, caplog):
    with caplog.at_level(logging.WARNING, logger="rx.client"):
        assert client.cmd("m1", "test.ping", delimiter=":", private=True, max_wait=30,
                          job_expire=60, username="salt", eauth="pam") == {"m1": True}
    assert "ignoring eauth, username" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="rx.client"):
        assert client.cmd("m1", "test.echo", ["x"], ret="mysql") == {"m1": "x"}
    assert "rx has no returners" in caplog.text


def test_what_rx_refuses_where_salt_matches_nothing(client):
    with pytest.raises(BadRequest, match="not a job id"):
        client.cmd("m1", "test.ping", jid="bogus")
    jid = client.cmd_async("m1", "test.ping")
    with pytest.raises(BadRequest, match="already in use"):
        client.run_job("m1", "test.ping", jid=jid)
    with pytest.raises(BadRequest, match="regular expression"):
        client.cmd("E@[", "test.ping", tgt_type="compound")
    with pytest.raises(BadRequest, match="unknown target type"):
        list(client.cmd_iter("*", "test.ping", tgt_type="nosuch"))


def test_a_caller_that_stops_early_frees_the_job(client):
    for item in client.cmd_iter("m1,m2", "test.sleep", [1], tgt_type="list"):
        break
    for item in client.cmd_iter_no_block("m1", "test.sleep", [1]):
        if item is None:
            break
    assert client.cmd("m1,m2", "test.ping", tgt_type="list") == {"m1": True, "m2": True}
