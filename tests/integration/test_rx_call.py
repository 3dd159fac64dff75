"""rx-call against real daemons: a function run through a minion's config, its return filed by the master
as a job of its own (found by jobs.lookup_jid, its events on the bus) while that minion's daemon keeps
running with the same key; --local without any master; options anywhere; exit codes; the master down, a
key not accepted, and a malformed `_call_return`."""

from __future__ import annotations

import json
import re
import subprocess

from rx.transport.callmsgs import CALL_RETURN
from tests.support.procs import wait_for
from tests.support.sandbox import make_minion_key, stored_returns

from conftest import EventWatch, FakeMinion


def call(box, minion_id: str, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    return box.run_cli("rx-call", *args, config_dir=box.minion_dir(minion_id), timeout=timeout)


def filed_jid(r: subprocess.CompletedProcess) -> str:
    found = re.search(r"filed by the master as job (\d{20})", r.stderr)
    assert found, r.stderr
    return found.group(1)


def test_rx_call_returns_to_the_master_by_default(fleet):
    with EventWatch(fleet.cfg, "rx/job/") as jobs:
        r = call(fleet, "m1", "test.echo", "hi there", "-l", "info", "--out", "json")
        assert r.returncode == 0, (r.stdout, r.stderr)
        assert json.loads(r.stdout) == {"m1": "hi there"}
        jid = filed_jid(r)
        new = jobs.next(match=lambda t: t == f"rx/job/{jid}/new")[1]
        ret = jobs.next(match=lambda t: t == f"rx/job/{jid}/ret/m1")[1]
    assert new["fun"] == "test.echo" and new["arg"] == ["hi there"] and new["user"] == "rx-call"
    assert new["minions"] == ["m1"] and ret["return"] == "hi there" and ret["success"] is True
    stored = stored_returns(fleet.cfg, jid)["m1"]
    assert stored["return"] == "hi there" and stored["retcode"] == 0
    looked = fleet.run_cli("rx-run", "jobs.lookup_jid", jid, "--out", "json")
    assert json.loads(looked.stdout) == {"m1": "hi there"}
    # the minion daemon, connected with the same key, is not disturbed
    assert json.loads(fleet.run_cli("rx", "m1", "test.ping", "--out", "json").stdout) == {"m1": True}
    assert "m1" in json.loads(fleet.run_cli("rx-run", "manage.present", "--out", "json").stdout)


def test_rx_call_uses_the_minion_config_and_grains(fleet):
    r = call(fleet, "m1", "grains.item", "id", "--out", "json")
    assert r.returncode == 0 and json.loads(r.stdout) == {"m1": {"id": "m1"}}, (r.stdout, r.stderr)
    r = call(fleet, "m1", "test.arg", "1", "k=v", "--out", "json", "-l", "debug")
    assert json.loads(r.stdout)["m1"]["args"] == [1] and json.loads(r.stdout)["m1"]["kwargs"] == {"k": "v"}


def test_failing_functions_and_retcode_passthrough(fleet):
    r = call(fleet, "m1", "test.retcode", "3", "-l", "info")
    assert r.returncode == 1, r.stderr
    assert stored_returns(fleet.cfg, filed_jid(r))["m1"]["retcode"] == 3  # a failure is filed too
    r = call(fleet, "m1", "--retcode-passthrough", "test.retcode", "3")
    assert r.returncode == 3
    r = call(fleet, "m1", "nosuch.function")
    assert r.returncode == 1 and "nosuch.function" in r.stdout


def test_options_anywhere_and_arguments_after_double_dash(sandbox):
    r = sandbox.run_cli("rx-call", "--local", "test.echo", "hi", "--out", "json", "--id", "box1")
    assert r.returncode == 0 and json.loads(r.stdout) == {"box1": "hi"}, (r.stdout, r.stderr)
    r = sandbox.run_cli("rx-call", "test.echo", "--out", "json", "--local", "--", "--out")
    assert r.returncode == 0 and list(json.loads(r.stdout).values()) == ["--out"], r.stderr
    r = sandbox.run_cli("rx-call", "--local", "test.retcode", "4", "--retcode-passthrough", "--out", "txt")
    assert r.returncode == 4 and r.stdout.strip().endswith(": true")  # Salt's test.retcode returns True
    r = sandbox.run_cli("rx-call", "test.ping", "--id", "x")
    assert r.returncode == 2 and "--id goes with --local" in r.stderr
    r = sandbox.run_cli("rx-call", "--local", "not-a-function")
    assert r.returncode == 2 and "module.function" in r.stderr


def test_master_down_prints_the_value_and_exits_5(fleet):
    fleet.stop_master()
    r = call(fleet, "m1", "test.echo", "still here", "-t", "2", "--out", "json")
    assert r.returncode == 5, (r.returncode, r.stderr)
    assert json.loads(r.stdout) == {"m1": "still here"}
    assert "the return was not sent to the master" in r.stderr


def test_a_key_that_is_not_accepted_is_said(sandbox):
    sandbox.start_master()
    sandbox.write_minion_config("newbie")
    make_minion_key(sandbox.minion_dir("newbie") / "root")
    r = call(sandbox, "newbie", "test.ping", "-t", "10")
    assert r.returncode == 5 and "pending" in r.stderr and "rx-key -a newbie" in r.stderr, r.stderr
    sandbox.write_minion_config("nokey")
    r = call(sandbox, "nokey", "test.ping")
    assert r.returncode == 5 and "no minion key" in r.stderr, r.stderr


def test_a_malformed_call_return_is_refused_and_files_nothing(fleet):
    fake = FakeMinion(fleet, "m9")
    try:
        assert fake.auth() == "accepted"
        before = json.loads(fleet.run_cli("rx-run", "jobs.list_jobs", "--out", "json").stdout)
        for load in ({"fun": "../etc", "arg": [], "kwarg": {}, "retcode": 0, "success": True, "return": 1},
                     {"fun": "test.ping", "arg": [], "kwarg": {1: 2}, "retcode": 0, "success": True, "return": 1},
                     {"fun": "test.ping", "arg": [], "kwarg": {}, "retcode": 0, "success": True}):
            reply = fake.send_sealed(fake.sealed(CALL_RETURN, load))
            assert reply.get("ok") is False and reply["error"]["type"] == "bad_request", reply
        after = json.loads(fleet.run_cli("rx-run", "jobs.list_jobs", "--out", "json").stdout)
        assert after == before
        good = {"fun": "test.ping", "arg": [], "kwarg": {}, "retcode": 0, "success": True, "return": True}
        frame = fake.sealed(CALL_RETURN, good)
        jid = fake.send_sealed(frame)["jid"]
        assert stored_returns(fleet.cfg, jid)["m9"]["return"] is True
        replayed = fake.send_sealed(frame)
        assert replayed.get("ok") is False and replayed["error"]["type"] == "duplicate", replayed
        wait_for(lambda: len(json.loads(fleet.run_cli("rx-run", "jobs.list_jobs", "--out", "json").stdout))
                 == len(before) + 1, what="exactly one job filed")
    finally:
        fake.close()
