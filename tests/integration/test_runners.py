"""rx-run and RunnerClient against real daemons: the manage runners (pings and live presence), the
event bus runners, background runner jobs, custom runners, and the bad input each one refuses."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest
import zmq

import rx
from rx.client.runner import RunnerClient
from rx.client.results import BadRequest
from rx.master.services.runner_jobs import master_id
from rx.transport.presence import CLAIM_MARK, MAC_BYTES, SERIAL_BYTES, id_tag
from rx.transport.topics import subscriptions
from tests.support.procs import wait_for
from tests.support.sandbox import stored_returns

from conftest import EventWatch


def run(box, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    return box.run_cli("rx-run", *args, timeout=timeout)


def out_json(box, *args: str) -> object:
    r = run(box, *args, "--out", "json")
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    return json.loads(r.stdout)


def present(box) -> list | None:
    """manage.present, or None while it fails (a master starting has not written its first report)."""
    r = run(box, "manage.present", "--out", "json")
    return json.loads(r.stdout) if r.returncode == 0 else None


def accepted(box) -> list[str]:
    r = box.run_cli("rx-key", "-L", "--out", "json")
    return json.loads(r.stdout)["accepted"]


# ---------------------------------------------------------------- presence (no ping)

def test_presence_follows_the_minions_connections_without_a_ping(fleet):
    """present/alived/joined list the connected minions; a minion killed with SIGKILL leaves the list at
    once and shows in not_present; after a master restart the list comes back with no job sent."""
    wait_for(lambda: present(fleet) == ["m1", "m2"], interval=0.2, what="m1 and m2 present")
    with EventWatch(fleet.cfg, "rx/job/") as jobs:
        for name in ("manage.alived", "manage.joined", "manage.list_state"):
            assert out_json(fleet, name) == ["m1", "m2"], name
        assert out_json(fleet, "manage.present", "show_ip=True") == {"m1": "127.0.0.1", "m2": "127.0.0.1"}
        assert out_json(fleet, "manage.present", "subset=[m2, m9]") == ["m2"]
        assert out_json(fleet, "manage.not_present") == []
        assert jobs.drain(0.5) == [], "presence runners published a job"

    before_kill = time.time()
    fleet.minions["m2"].kill()
    wait_for(lambda: present(fleet) == ["m1"], interval=0.2, what="m2 gone from presence after SIGKILL")
    gone = time.time()
    for name in ("manage.not_present", "manage.not_alived", "manage.not_joined", "manage.list_not_state"):
        assert out_json(fleet, name) == ["m2"], name
    seen = out_json(fleet, "manage.last_seen")
    assert seen["m1"]["up"] is True and seen["m1"]["since"] <= before_kill
    assert seen["m2"]["up"] is False and before_kill - 1 <= seen["m2"]["last_seen"] <= gone, (seen, before_kill, gone)

    fleet.stop_master()
    r = run(fleet, "manage.present")
    assert r.returncode == 5 and "master is not running" in r.stderr, (r.returncode, r.stderr)
    fleet.start_master()
    wait_for(lambda: present(fleet) == ["m1"], interval=0.2, what="m1 present again after the master restarted")
    again = out_json(fleet, "manage.last_seen")
    assert again["m2"] == seen["m2"], "a restarted master still knows when m2 was last connected"
    assert again["m1"]["up"] is True


def test_presence_outlives_a_key_rotation_and_follows_key_deletion(fleet):
    """Deleting m2's key rotates the session key: m2 leaves the list (only accepted minions are listed), m1
    stays in it before and after it re-authenticates and claims presence under the new serial."""
    wait_for(lambda: present(fleet) == ["m1", "m2"], interval=0.2, what="m1 and m2 present")
    assert fleet.run_cli("rx-key", "-d", "m2", "-y").returncode == 0
    wait_for(lambda: present(fleet) == ["m1"], interval=0.2, what="m2 gone with its key")
    # a job under the new serial makes m1 re-authenticate (and swap its claim) before it runs it
    assert json.loads(fleet.run_cli("rx", "m1", "test.ping", "--out", "json").stdout) == {"m1": True}
    wait_for(lambda: present(fleet) == ["m1"], interval=0.2, what="m1 present under its new claim")
    fleet.minions["m1"].kill()
    wait_for(lambda: present(fleet) == [], interval=0.2, what="every claim of m1 released when it is killed")


def test_a_forged_presence_claim_does_not_make_a_minion_present(fleet):
    """A SUB that claims m2's presence without m2's session key (right id tag, wrong MAC) is disconnected
    and m2, stopped, stays absent; the master logs it."""
    wait_for(lambda: present(fleet) == ["m1", "m2"], interval=0.2, what="m1 and m2 present")
    fleet.minions["m2"].kill()
    wait_for(lambda: present(fleet) == ["m1"], interval=0.2, what="m2 gone")
    forged = CLAIM_MARK + (1).to_bytes(SERIAL_BYTES, "big") + id_tag("m2") + b"\0" * MAC_BYTES
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    try:
        for topic in (*subscriptions("m2"), forged):
            sub.setsockopt(zmq.SUBSCRIBE, topic)
        sub.connect(f"tcp://127.0.0.1:{fleet.pub_port}")
        wait_for(lambda: "presence claim that does not verify" in fleet.master.output(), what="the forged claim refused")
        assert present(fleet) == ["m1"]
    finally:
        sub.close(linger=0)
        ctx.term()


# ---------------------------------------------------------------- pings

def test_up_down_status_and_versions_ping_like_salt(fleet):
    fleet.minions["m2"].kill()
    quick = ("timeout=1", "gather_job_timeout=1")
    assert out_json(fleet, "manage.up", *quick) == ["m1"]
    assert out_json(fleet, "manage.down", "-t", "1", "gather_job_timeout=1") == ["m2"]
    assert out_json(fleet, "manage.status", *quick) == {"up": ["m1"], "down": ["m2"]}
    assert out_json(fleet, "manage.up", "tgt=m2", *quick) == []
    assert out_json(fleet, "manage.up", "tgt=m1", "tgt_type=list", *quick) == ["m1"]
    assert out_json(fleet, "manage.versions", *quick) == {
        "Master": rx.__version__, "Up to date": {"m1": rx.__version__}, "Minion offline": {"m2": False}}
    r = run(fleet, "manage.up", "tgt=m1")  # nested output: one "- id" line per minion
    assert r.returncode == 0 and r.stdout.splitlines() == ["- m1"], r.stdout


def test_down_removekeys_needs_yes(fleet):
    """Without -y: exit 7, the minions that would lose their keys are named, nothing is removed; with -y
    the down minion's key is deleted and the others keep theirs."""
    fleet.minions["m2"].kill()
    r = run(fleet, "manage.down", "removekeys=True", "timeout=1", "gather_job_timeout=1")
    assert r.returncode == 7, (r.returncode, r.stdout, r.stderr)
    assert "m2" in r.stderr and "-y/--yes" in r.stderr and "Nothing was removed" in r.stderr
    assert accepted(fleet) == ["m1", "m2"]
    r = run(fleet, "manage.down", "removekeys=True", "timeout=1", "gather_job_timeout=1", "--yes", "--out", "json")
    assert r.returncode == 0 and json.loads(r.stdout) == ["m2"], (r.stdout, r.stderr)
    assert accepted(fleet) == ["m1"]
    assert out_json(fleet, "manage.up", "timeout=1", "gather_job_timeout=1") == ["m1"]


# ---------------------------------------------------------------- the event bus

class Watcher:
    """`rx-run ARGS -l info` in the background; ready once it says it watches (its subscription is live)."""

    def __init__(self, box, *args: str) -> None:
        argv = [*box.command("rx-run"), "-c", str(box.master_dir), *args, "-l", "info"]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.err = ""
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stderr, selectors.EVENT_READ)
        deadline = time.monotonic() + 20
        while "watching" not in self.err:
            assert time.monotonic() < deadline and self.proc.poll() is None, f"watcher not ready: {self.err}"
            if sel.select(0.2):
                self.err += self.proc.stderr.readline()

    def finish(self, timeout: float = 20) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, self.err + err


def test_state_event_prints_matching_events_until_count(fleet):
    watcher = Watcher(fleet, "state.event", "myapp/*", "count=2")
    for args in (["myapp/one", "{a: 1, b: [x, 2]}"], ["other/x"], ["myapp/two"], ["myapp/three"]):
        r = run(fleet, "event.send", *args)
        assert r.returncode == 0 and r.stdout.strip() == "True", r.stderr
    code, out, _err = watcher.finish()
    assert code == 0
    assert out.splitlines() == ['myapp/one\t{"a": 1, "b": ["x", 2]}', "myapp/two\t{}"]


def test_event_watch_pretty_and_job_events(fleet):
    watcher = Watcher(fleet, "event.watch", "rx/job/*/ret/*", "count=1", "pretty=True")
    assert fleet.run_cli("rx", "m1", "test.echo", "hi").returncode == 0
    code, out, _err = watcher.finish()
    tag, _, body = out.partition("\t")
    assert code == 0 and tag.startswith("rx/job/") and tag.endswith("/ret/m1")
    assert json.loads(body)["return"] == "hi" and "\n    " in body, out


def test_event_watch_with_a_timeout_fails_when_too_few_events_come(fleet):
    r = run(fleet, "event.watch", "nothing/*", "count=1", "-t", "1")
    assert r.returncode == 1 and "0 of 1 matching event(s) within 1s" in r.stderr, r.stderr
    r = run(fleet, "event.watch", "nothing/*", "-t", "0.5")  # no count: watching until -t is no failure
    assert r.returncode == 0 and r.stdout == ""


def test_event_send_refuses_bad_tags_and_payloads(fleet):
    with EventWatch(fleet.cfg, "") as bus:
        for tag, why in (("rx/job/1/ret/m1", "rx's own events"), ("t" * 513, "1-512 printable characters"),
                         ("a\tb", "printable")):
            r = run(fleet, "event.send", tag)
            assert r.returncode == 2 and why in r.stderr, (tag, r.stderr)
        r = run(fleet, "event.send", "myapp/x", "[1, 2]")
        assert r.returncode == 2 and "must be a mapping" in r.stderr
        r = run(fleet, "event.send", "myapp/x", "bad=1")  # no such argument: the signature is shown
        assert r.returncode == 2 and "usage: event.send(tag, data=None)" in r.stderr, r.stderr
        with pytest.raises(BadRequest, match="over the 1048576-byte limit"):
            RunnerClient(fleet.cfg).cmd("event.send", ["myapp/big", {"blob": "x" * (1024 * 1024)}])
        assert [t for t, _ in bus.drain(0.5) if not t.startswith("rx/minion/")] == [], "a refused event was fired"
    fleet.stop_master()
    r = run(fleet, "event.send", "myapp/x")
    assert r.returncode == 5 and "not running" in r.stderr


# ---------------------------------------------------------------- the machinery

def test_unknown_runners_and_wrong_arguments_are_usage_errors(sandbox):
    sandbox.start_master()
    cases = [(["manage.upp"], "no runner 'manage.upp'; did you mean manage.up?"),
             (["jobs.lookup"], "did you mean jobs.lookup_jid?"),
             (["nosuch.thing"], "see rx-run -d for the list"),
             (["manage"], "not a runner name"),
             (["manage.up", "bogus=1"], "unexpected keyword argument 'bogus'; usage: manage.up(tgt='*', "
                                        "tgt_type='glob', timeout=None, gather_job_timeout=None)"),
             (["jobs.lookup_jid"], "missing a required argument: 'jid'"),
             (["manage.up", "timeout=soon"], "timeout must be a number of seconds > 0, got 'soon'"),
             (["manage.up", "-t", "0"], "-t/--timeout must be a number of seconds > 0"),
             (["jobs.lookup_jid", "../../etc/passwd"], "is not a job id"),
             (["jobs.lookup_jid", "20991231235959000000"], "no job 20991231235959000000 in the job cache")]
    for args, message in cases:
        r = run(sandbox, *args)
        assert r.returncode == 2 and message in r.stderr, (args, r.returncode, r.stderr)
    r = run(sandbox, "-d", "manage")
    assert r.returncode == 0 and "manage.down(removekeys=False, tgt='*'" in r.stdout and "manage.versions" in r.stdout
    r = run(sandbox, "-d", "nosuch*")
    assert r.returncode == 2


def test_async_runner_job_is_stored_under_the_master_id(fleet):
    with EventWatch(fleet.cfg, "rx/job/") as jobs:
        r = run(fleet, "--async", "manage.versions", "timeout=1")
        assert r.returncode == 0, r.stderr
        jid = r.stdout.strip()
        tag, data = jobs.next(match=lambda t: t == f"rx/job/{jid}/ret/{master_id()}")
    versions = {"Master": rx.__version__, "Up to date": {"m1": rx.__version__, "m2": rx.__version__}}
    assert data["return"] == versions and data["success"] is True
    assert out_json(fleet, "jobs.lookup_jid", jid) == {master_id(): versions}
    listed = out_json(fleet, "jobs.list_jobs")[jid]
    assert listed["Function"] == "manage.versions" and listed["Target"] == [master_id()]


def test_async_runner_failure_is_stored_as_a_failed_return(fleet):
    fleet.minions["m2"].kill()
    jid = run(fleet, "--async", "manage.down", "removekeys=True", "timeout=1", "gather_job_timeout=1").stdout.strip()
    stored = wait_for(lambda: stored_returns(fleet.cfg, jid), what="the background runner's return")[master_id()]
    assert stored["success"] is False and stored["retcode"] == 7 and "-y/--yes" in stored["return"]
    assert accepted(fleet) == ["m1", "m2"]


def test_runner_client_api(fleet):
    runner = RunnerClient(fleet.cfg)
    assert "manage.up" in runner.functions() and "state.event" in runner.functions()
    assert runner.cmd("manage.up", kwarg={"timeout": 2}) == ["m1", "m2"]
    assert runner.cmd("manage.up", ["tgt=m1", "timeout=2"]) == ["m1"]  # Salt's key=value strings in arg
    wait_for(lambda: runner.cmd("manage.present") == ["m1", "m2"], interval=0.2, what="presence through the API")
    assert runner.cmd("event.send", ["myapp/api"], {"data": {"n": 1}}) is True
    with pytest.raises(BadRequest, match="did you mean manage.status"):
        runner.cmd("manage.statu")
    jid = runner.cmd_async("manage.present")
    assert wait_for(lambda: stored_returns(fleet.cfg, jid))[master_id()]["return"] == ["m1", "m2"]


def test_custom_runners_from_extmods_and_entry_points(sandbox, tmp_path, monkeypatch):
    """A module in <cachedir>/extmods/runners and one from an installed package's rx.runners entry point run
    like built-ins; one without __all__, one writable by others, and one named like a built-in do not."""
    sandbox.prepare_pki()
    ext = Path(sandbox.cfg.cachedir) / "extmods" / "runners"
    ext.mkdir(parents=True)
    ext.chmod(0o755)
    (ext / "hello.py").write_text(textwrap.dedent('''
        __all__ = ["world"]
        def world(name="world", ctx=None):
            """Say hello."""
            return f"hello {name}"
        def hidden():
            return "not exported"
        '''))
    (ext / "noall.py").write_text("def f():\n    return 1\n")
    (ext / "manage.py").write_text("__all__ = ['up']\ndef up():\n    return 'impostor'\n")
    site = tmp_path / "site"
    (site / "myrunners-1.0.dist-info").mkdir(parents=True)
    (site / "myrunners-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: myrunners\nVersion: 1.0\n")
    (site / "myrunners-1.0.dist-info" / "entry_points.txt").write_text("[rx.runners]\nsite = myrunners_site\n")
    (site / "myrunners_site.py").write_text(textwrap.dedent('''
        __all__ = ["cachedir"]
        async def cachedir(ctx):
            """The master's cachedir, from the context."""
            return ctx.cfg.cachedir
        '''))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    assert out_json(sandbox, "hello.world", "name=rx") == "hello rx"
    assert out_json(sandbox, "site.cachedir") == sandbox.cfg.cachedir
    r = run(sandbox, "hello.hidden")
    assert r.returncode == 2 and "no runner 'hello.hidden'" in r.stderr
    r = run(sandbox, "noall.f")
    assert r.returncode == 2 and "no __all__" in r.stderr
    r = run(sandbox, "manage.up", "timeout=1")
    assert "impostor" not in r.stdout and "ignored" in r.stderr, (r.stdout, r.stderr)
    (ext / "hello.py").chmod(0o666)
    r = run(sandbox, "hello.world")
    assert r.returncode == 2 and "writable by group or others" in r.stderr, r.stderr


def test_interrupted_watch_exits_130(fleet):
    watcher = Watcher(fleet, "state.event")
    watcher.proc.send_signal(signal.SIGINT)
    code, _out, err = watcher.finish()
    assert code == 130 and "Interrupted" in err
