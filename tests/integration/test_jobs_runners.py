"""`rx-run jobs.*` against real daemons, with the job store on SQLite and on a real PostgreSQL server: every
runner, Salt's fields, and the bad input (unknown, malformed and path-trick jids, unknown arguments)."""

from __future__ import annotations

import json
import time

import pytest

from rx.client.local import LocalClient
from tests.support.procs import wait_for
from tests.support.lc_contract import merged


def backend_overrides(request, name: str) -> dict:
    if name == "sqlite":
        return {}
    return {"job_store_backend": "postgres", "postgres_dsn": request.getfixturevalue("postgres").new_database()}


@pytest.fixture(params=["sqlite", "postgres"])
def jobs_fleet(request, sandbox):
    """A master on the backend, minions m1 and m2 running, and m3 accepted but never started."""
    sandbox.master_overrides.update(backend_overrides(request, request.param))
    sandbox.start_master()
    sandbox.start_minion("m1")
    sandbox.start_minion("m2")
    sandbox.preaccept("m3")
    return sandbox


def run_json(box, *args: str, code: int = 0):
    r = box.run_cli("rx-run", *args, "--out", "json")
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    return json.loads(r.stdout)


def test_every_jobs_runner(jobs_fleet):
    box = jobs_fleet
    t0 = time.time()
    with LocalClient(cfg=box.cfg) as c:
        echo = c.run_job(["m1", "m2"], "test.echo", ["hi"], tgt_type="list")["jid"]
        assert merged(c.get_cli_returns(echo, ["m1", "m2"], timeout=20)) == {"m1": "hi", "m2": "hi"}
        ping = c.run_job("m*", "test.ping")["jid"]  # m3 is expected and never returns
        assert merged(c.get_cli_returns(ping, ["m1", "m2"], timeout=20)) == {"m1": True, "m2": True}
        sleeper = c.cmd_async("m1", "test.sleep", [30])
    assert echo < ping < sleeper

    listed = run_json(box, "jobs.list_jobs")
    assert list(listed) == [echo, ping, sleeper]  # the outputters sort by jid: oldest first
    assert listed[echo] == {"Function": "test.echo", "Arguments": ["hi"], "Target": ["m1", "m2"],
                            "Target-type": "list", "User": listed[echo]["User"],
                            "StartTime": listed[echo]["StartTime"], "Minions": ["m1", "m2"]}
    assert listed[ping]["Minions"] == ["m1", "m2", "m3"] and listed[ping]["StartTime"].startswith(time.strftime(
        "%Y, %b %d", time.gmtime(t0)))
    assert list(run_json(box, "jobs.list_jobs", "search_function=test.*")) == [echo, ping, sleeper]
    assert list(run_json(box, "jobs.list_jobs", "search_function=[test.echo, test.sleep]")) == [echo, sleeper]
    assert list(run_json(box, "jobs.list_jobs", "search_target=m*")) == [echo, ping, sleeper]
    assert list(run_json(box, "jobs.list_jobs", "search_target=m[*]")) == [ping]  # the target itself, not who matched
    assert list(run_json(box, "jobs.list_jobs", "search_target=m2")) == [echo]
    assert list(run_json(box, "jobs.list_jobs", "limit=2")) == [ping, sleeper]  # the newest
    future = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() + 3600))
    assert run_json(box, "jobs.list_jobs", f"start_time={future}") == {}
    assert list(run_json(box, "jobs.list_jobs", f"end_time={future}", "search_function=test.echo")) == [echo]

    assert run_json(box, "jobs.lookup_jid", echo) == {"m1": "hi", "m2": "hi"}
    assert run_json(box, "jobs.lookup_jid", ping, "missing=True") == {
        "m1": True, "m2": True, "m3": "Minion did not return"}
    assert run_json(box, "jobs.exit_success", echo) == {"m1": True, "m2": True}
    assert run_json(box, "jobs.exit_success", ping, code=1) == {"m1": True, "m2": True, "m3": False}

    printed = run_json(box, "jobs.print_job", echo)[echo]
    assert printed["Function"] == "test.echo" and set(printed["Result"]) == {"m1", "m2"}
    for ret in printed["Result"].values():  # the minion's own start and end of the job
        assert ret["return"] == "hi" and ret["retcode"] == 0 and ret["success"] is True
        assert t0 - 5 <= ret["start_time"] <= ret["end_time"] <= time.time() + 5
    assert run_json(box, "jobs.last_run", "function=test.echo") == {echo: printed}
    assert list(run_json(box, "jobs.last_run")) == [sleeper]
    assert run_json(box, "jobs.last_run", "function=nothing.*", code=1) is False

    active = run_json(box, "jobs.active", "timeout=5")
    assert list(active) == [sleeper], active
    assert active[sleeper]["Function"] == "test.sleep" and active[sleeper]["Returned"] == []
    assert [list(r) for r in active[sleeper]["Running"]] == [["m1"]]


@pytest.mark.parametrize("args, code, said", [
    (["jobs.lookup_jid", "../../../etc/passwd"], 2, "is not a job id"),
    (["jobs.lookup_jid", "2024010203040506070"], 2, "is not a job id"),
    (["jobs.print_job", "20240102030405060700/../x"], 2, "is not a job id"),
    (["jobs.exit_success", "２０２４０１０２０３０４０５０６０７００"], 2, "is not a job id"),
    (["jobs.lookup_jid", "20000102030405060700"], 2, "no job 20000102030405060700 in the job cache"),
    (["jobs.print_job", "20000102030405060700"], 2, "no job"),
    (["jobs.lookup_jid"], 2, "missing a required argument: 'jid'; usage: jobs.lookup_jid(jid,"),
    (["jobs.list_jobs", "colour=blue"], 2, "unexpected keyword argument 'colour'"),
    (["jobs.list_jobs", "start_time=yesterday-ish"], 2, "is not a time"),
    (["jobs.list_jobs", "limit=-1"], 2, "limit"),
    (["jobs.nothing"], 2, "no runner 'jobs.nothing'"),
])
def test_bad_input_is_a_clear_error(fleet, args, code, said):
    r = fleet.run_cli("rx-run", *args)
    assert r.returncode == code and said in r.stderr, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr and r.stdout == ""


def test_a_job_whose_cli_timed_out_is_looked_up_with_all_its_returns(fleet):
    """The issue's "done when": rx gives up after -t 1 while test.sleep runs; the returns are all stored."""
    r = fleet.run_cli("rx", "*", "test.sleep", "3", "-t", "1", "--max-wait", "1", "--out", "json", "-v")
    assert r.returncode == 3, r.stderr
    jid = next(line.split()[-1] for line in r.stderr.splitlines() if line.startswith("Executing job with jid"))
    wait_for(lambda: run_json(fleet, "jobs.lookup_jid", jid) == {"m1": True, "m2": True}, timeout=30,
             what="both returns in the job store")
