"""Issue: targeting, the full rx CLI and the LocalClient API, against real daemons.

The fleet: m1 and m2 with static grains from their config; 'ghost' is an
accepted key with no minion running and no grains cached."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys

import pytest
import yaml

from conftest import EventWatch
from rx.client import AsyncLocalClient, LocalClient
from tests.support.procs import children_of, wait_for
from tests.support.lc_contract import merged

NODEGROUPS = {"webs": "G@role:web", "both": ["m1", "m2"], "prodweb": "N@webs and G@env:prod"}


@pytest.fixture
def grained(sandbox):
    sandbox.start_master(nodegroups=NODEGROUPS)
    sandbox.master_overrides = {"nodegroups": NODEGROUPS}
    sandbox.start_minion("m1", grains={"role": "web", "env": "prod", "deep": {"rack": "r1"}})
    sandbox.start_minion("m2", grains={"role": "db", "env": "dev", "deep": {"rack": "r2"}})
    return sandbox


def rx(box, *args, **kw):
    return box.run_cli("rx", *args, **kw)


def jout(r):
    assert r.returncode in (0, 1, 3), (r.returncode, r.stdout, r.stderr)
    return json.loads(r.stdout)


@pytest.mark.parametrize("flags, expected", [
    (["m*"], ["m1", "m2"]),
    (["-E", "m[2-9]"], ["m2"]),
    (["-L", "m1,m2,nobody"], ["m1", "m2"]),
    (["-G", "role:web"], ["m1"]),
    (["-G", "deep:rack:r2"], ["m2"]),
    (["-G", "deep|rack|r2", "--delimiter", "|"], ["m2"]),
    (["-P", "env:(prod|dev)$"], ["m1", "m2"]),
    (["-S", "127.0.0.0/8"], ["m1", "m2"]),
    (["-N", "webs"], ["m1"]),
    (["-N", "both"], ["m1", "m2"]),
    (["-C", "G@env:dev or ( m1 and not G@role:db )"], ["m1", "m2"]),
    (["-C", "N@prodweb"], ["m1"]),
    (["-C", "not E@m1 and S@127.0.0.1"], ["m2"]),
])
def test_every_matcher_previews_and_runs_the_same(grained, flags, expected):
    preview = rx(grained, *flags, "--preview-target", "--out", "json")
    assert preview.returncode == 0, preview.stderr
    assert json.loads(preview.stdout) == expected
    ran = jout(rx(grained, *flags, "test.ping", "--out", "json"))
    assert sorted(ran) == expected


def test_preview_sends_nothing(grained):
    jobs = os.listdir(grained.cfg.jobs_dir)
    r = rx(grained, "*", "--preview-target")
    assert r.returncode == 0 and r.stdout.split() == ["m1", "m2"]
    assert os.listdir(grained.cfg.jobs_dir) == jobs


def test_grains_refresh_updates_the_masters_cache(grained):
    conf = grained.minion_dir("m2") / "minion"
    data = yaml.safe_load(conf.read_text())
    data["grains"]["role"] = "web"
    conf.write_text(yaml.safe_dump(data))
    assert jout(rx(grained, "-G", "role:web", "test.ping", "--out", "json")) == {"m1": True}
    watch = EventWatch(grained.cfg, "rx/minion/m2/grains")
    try:
        assert jout(rx(grained, "m2", "grains.refresh", "--out", "json"))["m2"]["role"] == "web"
        watch.next()
    finally:
        watch.close()
    assert jout(rx(grained, "-G", "role:web", "test.ping", "--out", "json")) == {"m1": True, "m2": True}


def test_missing_minions_get_reasons(grained):
    grained.preaccept("ghost")
    r = rx(grained, "-G", "role:web", "test.ping", "-t", "1")
    assert r.returncode == 0, "a minion without cached grains is not a false failure"
    assert "ghost:\n    Minion did not return. [no grains cached]" in r.stdout
    r = rx(grained, "*", "test.ping", "-t", "1", "--out", "json")
    assert r.returncode == 3
    assert json.loads(r.stdout)["ghost"] == "Minion did not return. [not connected]"


def test_running_job_extends_the_wait(grained):
    r = rx(grained, "m1", "test.sleep", "3", "-t", "1", "--out", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"m1": True}


def test_async_verbose_summary_and_lookup(grained):
    r = rx(grained, "m1", "test.echo", "later", "--async")
    jid = r.stdout.strip()
    assert r.returncode == 0 and len(jid) == 20
    looked = wait_for(lambda: (x := grained.run_cli("rx-run", "jobs.lookup_jid", jid, "--out", "json")).returncode == 0
                      and json.loads(x.stdout) == {"m1": "later"} and x, what="async job result")
    assert looked
    r = rx(grained, "*", "test.ping", "-v")
    assert r.returncode == 0
    assert "Executing job with jid" in r.stderr and "Summary: targeted 2, returned ok 2, failed 0" in r.stderr
    r = rx(grained, "*", "test.retcode", "2", "--summary", "--out", "json")
    assert r.returncode == 1 and "failed 2" in r.stderr
    assert json.loads(r.stdout) == {"m1": True, "m2": True}  # Salt's test.retcode: True, with that retcode


def test_batches(grained):
    r = rx(grained, "*", "test.ping", "-b", "1", "--out", "json")
    assert r.returncode == 0 and json.loads(r.stdout) == {"m1": True, "m2": True}
    assert "[batch] 2/2 done" in r.stderr and "1 running" in r.stderr and "2 running" not in r.stderr
    r = rx(grained, "*", "test.ping", "-b", "50%", "--batch-wait", "0.2", "--out", "json")
    assert json.loads(r.stdout) == {"m1": True, "m2": True}
    r = rx(grained, "*", "test.retcode", "1", "-b", "1", "--failhard", "--out", "json")
    out = json.loads(r.stdout)
    assert r.returncode == 1 and sum(v is True for v in out.values()) == 1, "failhard starts nothing after a failure"


def test_subset(grained):
    r = rx(grained, "*", "test.ping", "--subset", "1", "--out", "json")
    assert r.returncode == 0 and len(json.loads(r.stdout)) == 1


def test_outputters(grained, tmp_path):
    r = rx(grained, "*", "test.echo", "hi", "--out", "jsonl")
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert sorted(x["id"] for x in lines) == ["m1", "m2"] and all(x["ret"] == "hi" for x in lines)
    r = rx(grained, "m1", "cmd.run", "printf 'a\\nb'", "--out", "txt")
    assert r.stdout.splitlines() == ["m1: a", "m1: b"]
    r = rx(grained, "m1", "test.echo", "hi", "--out", "yaml")
    assert yaml.safe_load(r.stdout) == {"m1": "hi"}
    r = rx(grained, "m1", "test.echo", "hi", "--out", "raw")
    assert r.stdout.strip() == "{'m1': 'hi'}"
    r = rx(grained, "*", "test.ping", "--out", "json", "--static", "--out-indent", "-1")
    assert r.stdout.count("\n") == 1 and json.loads(r.stdout) == {"m1": True, "m2": True}
    out = tmp_path / "out.json"
    r = rx(grained, "*", "test.ping", "--out", "json", "--out-file", str(out))
    assert r.stdout == "" and json.loads(out.read_text()) == {"m1": True, "m2": True}
    assert "\x1b[" in rx(grained, "m1", "test.ping", "--force-color").stdout
    assert "\x1b[" not in rx(grained, "m1", "test.ping").stdout


def test_argument_parsing_and_multi_function(grained):
    arg = jout(rx(grained, "m1", "test.arg", "1", "true", "x", "k=2", "--out", "json"))["m1"]
    assert arg["args"] == [1, True, "x"] and arg["kwargs"] == {"k": 2}
    arg = jout(rx(grained, "m1", "test.arg", "1", "k=2", "--no-parse", "--out", "json"))["m1"]
    assert arg["args"] == ["1"] and arg["kwargs"] == {"k": "2"}
    multi = jout(rx(grained, "*", "test.ping,test.echo", ",hi", "--out", "json"))
    assert multi == {m: {"test.ping": True, "test.echo": "hi"} for m in ("m1", "m2")}


def test_doc_and_versions(grained):
    r = rx(grained, "-d", "test.ping")
    assert r.returncode == 0 and "test.ping:" in r.stdout and "CLI example" in r.stdout
    r = rx(grained, "--versions-report")
    assert r.returncode == 0 and "pyzmq" in r.stdout and "libzmq" in r.stdout


@pytest.mark.parametrize("args, code, message", [
    (["-C", "G@role:web and", "test.ping"], 2, "expected a target or '(' at the end"),
    (["-C", "( m1 or m2", "test.ping"], 2, "expected ')'"),
    (["-N", "nosuch", "test.ping"], 2, "unknown nodegroup 'nosuch'"),
    (["-S", "10.0.0.0/99", "test.ping"], 2, "bad IP address or CIDR"),
    (["-E", "m[", "test.ping"], 2, "bad regular expression"),
    (["-P", "role:(", "test.ping"], 2, "bad regular expression"),
    (["*", "test.ping", "--out", "bogus"], 2, "invalid choice"),
    (["*", "test.ping", "-b", "0"], 2, "batch size"),
    (["*", "test.ping", "-t", "-1"], 2, "timeout"),
    (["*", "testping"], 2, "module.function"),
    (["nothing*", "test.ping"], 4, "No minions matched"),
    (["-G", "role:none", "test.ping"], 4, "No minions matched"),
])
def test_bad_input_is_a_clear_error_and_publishes_nothing(grained, args, code, message):
    jobs = os.listdir(grained.cfg.jobs_dir)
    r = rx(grained, *args)
    assert r.returncode == code, (r.stdout, r.stderr)
    assert message in r.stderr and "Traceback" not in r.stderr
    if code == 2:
        assert os.listdir(grained.cfg.jobs_dir) == jobs


@pytest.mark.parametrize("extra", [[], ["-b", "1"]])
def test_ctrl_c_prints_the_jid(grained, extra):
    # the job of an earlier case goes on after its Ctrl-C: wait it out, or it would pass for this one
    wait_for(lambda: not children_of(grained.minions["m1"].pid), timeout=30, what="earlier jobs done")
    p = subprocess.Popen([sys.executable, "-m", "rx.client.cli", "-c", str(grained.master_dir), "m1", "test.sleep",
                          "5", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: grained.minions["m1"].alive() and
             any(True for _ in children_of(grained.minions["m1"].pid)), what="job started")
    p.send_signal(signal.SIGINT)
    _out, err = p.communicate(timeout=30)
    assert p.returncode == 130
    assert "rx-run jobs.lookup_jid" in err


def test_localclient_api(grained):
    with LocalClient(cfg=grained.cfg) as c:
        assert c.cmd("*", "test.ping") == {"m1": True, "m2": True}
        fds = len(os.listdir("/proc/self/fd"))
        for _ in range(20):
            assert c.cmd("*", "test.ping") == {"m1": True, "m2": True}
        assert len(os.listdir("/proc/self/fd")) <= fds + 2, "one client, many jobs: no socket leak per job"
        full = c.cmd("m1", "test.arg", ["a"], kwarg={"b": 1}, full_return=True)["m1"]
        assert full["retcode"] == 0 and full["ret"]["kwargs"] == {"b": 1} and len(full["jid"]) == 20
        assert c.cmd("role:db", "test.ping", tgt_type="grain") == {"m2": True}
        assert c.cmd("G@role:web or m2", "test.ping", tgt_type="compound") == {"m1": True, "m2": True}
        assert c.cmd("webs", "test.ping", tgt_type="nodegroup") == {"m1": True}
        items = list(c.cmd_iter_no_block("m1", "test.sleep", [0.5]))
        assert items[-1]["m1"]["ret"] is True and None in items
        assert len(c.cmd_subset("*", "test.ping", subset=1)) == 1
        batch = list(c.cmd_batch("*", "test.ping", batch="1"))
        assert sorted(k for i in batch for k in i) == ["m1", "m2"]
        pub = c.run_job("*", "test.echo", ["x"])
        assert sorted(pub["minions"]) == ["m1", "m2"]
        assert merged(c.get_cli_returns(pub["jid"], pub["minions"])) == {"m1": "x", "m2": "x"}
        grained.preaccept("ghost")
        missing = dict(kv for i in c.cmd_iter("*", "test.ping", timeout=1, expect_minions=True) for kv in i.items())
        assert missing["ghost"] == {"failed": True}  # Salt's shape (rx's reason with rx_reasons=True)


def test_async_localclient_is_an_async_context_manager(grained):
    async def go():
        async with AsyncLocalClient(cfg=grained.cfg) as c:
            results = await asyncio.gather(*(c.cmd("*", "test.echo", [i]) for i in range(5)))
            return results
    results = asyncio.run(go())
    assert results == [{"m1": i, "m2": i} for i in range(5)]


def test_batch_and_subset_never_run_on_a_minion_that_does_not_match(grained, tmp_path):
    """m2 (role db) lost its cached grains: it is listed for -G role:web, but checks the target itself."""
    os.unlink(os.path.join(grained.cfg.cachedir, "grains", "m2"))
    marker = tmp_path / "ran"
    for extra in (["-b", "1"], ["--subset", "2"]):
        r = rx(grained, "-G", "role:web", "cmd.run", f"echo $(hostname) >> {marker}; echo done", *extra,
               "--out", "json", "-t", "2")
        assert r.returncode == 0, (r.stdout, r.stderr)
        out = json.loads(r.stdout)
        assert out["m1"] == "done"
        assert out.get("m2", "Minion did not return. [no grains cached]") == "Minion did not return. [no grains cached]"
    assert marker.read_text().count("\n") == 2, "only m1 ran, once per command"


def test_failhard_reports_minions_it_did_not_start(grained):
    r = rx(grained, "*", "test.retcode", "1", "-b", "1", "--failhard", "--summary", "--out", "json")
    assert r.returncode == 1
    out = json.loads(r.stdout)
    assert sorted(out) == ["m1", "m2"]
    assert sum("not started" in str(v) for v in out.values()) == 1
    assert "not started 1" in r.stderr


def test_nodegroup_cycle_stops_the_master_at_start(sandbox):
    sandbox.write_master_config(nodegroups={"loop1": "N@loop2", "loop2": "web* or N@loop1"})
    p = subprocess.run([sys.executable, "-m", "rx.master.daemon", "-c", str(sandbox.master_dir)], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 2
    assert p.stderr.count("\n") == 1 and "nodegroups: nodegroup cycle: loop1 -> loop2 -> loop1" in p.stderr


def test_stopping_cmd_iter_no_block_early_leaves_the_client_usable(grained):
    with LocalClient(cfg=grained.cfg) as c:
        for item in c.cmd_iter_no_block("m1", "test.sleep", [1]):
            if item is None:
                break
        assert c.cmd("*", "test.ping") == {"m1": True, "m2": True}
