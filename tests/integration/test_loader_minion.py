"""The loader and job-level behaviour through real daemons: custom modules from module_dirs and from an
installed package's `rx.modules` entry point, a module that cannot import, laziness, Salt's answers to
unknown functions and wrong arguments, job time limits, a flood of prints, and the saltutil/rxutil
built-ins on a running job."""

from __future__ import annotations

import json
import textwrap
import threading
from pathlib import Path

from rx.client.local import LocalClient
from tests.support.pkgs import install_dist
from tests.support.lc_contract import merged
from tests.support.procs import wait_for

PROBE = '''
"""What the job process has imported: the minion's own imports, inherited at fork, and the job's."""
import sys

__all__ = ["loaded", "shout"]


def loaded() -> list:
    """Return the rx.modules.* modules imported in this job process.

    CLI example: rx '*' probe.loaded
    """
    return sorted(m for m in sys.modules if m.startswith("rx.modules."))


def shout(megabytes: int = 100) -> str:
    """Print `megabytes` MB, then return "done".

    CLI example: rx '*' probe.shout
    """
    line = "x" * (1 << 20)
    for _ in range(int(megabytes)):
        print(line)
    return "done"
'''

PACKAGED = '''
"""Greetings from an installed package."""
from rx.modules import ExecContext

__all__ = ["hello"]


def hello(ctx: ExecContext, name: str = "world") -> str:
    """Return a greeting from this minion.

    CLI example: rx '*' greeter.hello you
    """
    return f"hello {name}, from {ctx.minion_id}"
'''


def _custom_sources(tmp_path: Path, monkeypatch) -> Path:
    """A module_dirs directory (probe, broken) and a package with an rx.modules entry point on PYTHONPATH."""
    mods = tmp_path / "mods"
    mods.mkdir()
    (mods / "probe.py").write_text(textwrap.dedent(PROBE))
    (mods / "broken.py").write_text("import rx_no_such_library\n__all__ = ['f']\n")
    site = install_dist(tmp_path / "site", "rx-greeter", "1.0",
                        {"rxgreeter/__init__.py": "", "rxgreeter/greeter.py": PACKAGED},
                        {"rx.modules": {"greeter": "rxgreeter.greeter"}})
    monkeypatch.setenv("PYTHONPATH", str(site))  # the minion (started next) inherits it
    return mods


def test_custom_modules_laziness_and_what_cannot_load(sandbox, tmp_path, monkeypatch):
    mods = _custom_sources(tmp_path, monkeypatch)
    sandbox.start_master()
    minion = sandbox.start_minion("m1", module_dirs=[str(mods)])
    with LocalClient(cfg=sandbox.cfg) as c:
        assert c.cmd("m1", "test.ping") == {"m1": True}
        # the job process inherits what the minion imported: only `test`, imported by the minion itself to run
        # test.ping in its own process (rx.modules.INLINE), not any other module
        assert c.cmd("m1", "probe.loaded") == {"m1": ["rx.modules.test"]}
        assert c.cmd("m1", "greeter.hello", ["rx"]) == {"m1": "hello rx, from m1"}
        assert c.cmd("m1", "test.provider", ["greeter"]) == {"m1": "greeter"}
        broken = c.cmd("m1", "broken.f", full_return=True)["m1"]
        assert broken["retcode"] == 1 and broken["ret"].startswith(
            "'broken.f' is not available. Module 'broken' is unavailable here: ")
        assert "ModuleNotFoundError: No module named 'rx_no_such_library'" in broken["ret"]
        unavailable = c.cmd("m1", "sys.list_unavailable")["m1"]
        assert "broken" in unavailable and str(mods / "broken.py") in unavailable["broken"]
        assert c.cmd("m1", "sys.doc", ["broken"])["m1"] == {
            "broken": f"Module 'broken' is unavailable here: {unavailable['broken']}"}
        listed = c.cmd("m1", "sys.list_modules")["m1"]
        assert {"probe", "greeter", "test", "saltutil"} <= set(listed) and "broken" not in listed
        assert c.cmd("m1", "sys.argspec", ["greeter.hello"])["m1"] == {
            "greeter.hello": {"args": ["name"], "defaults": ["world"], "varargs": None, "kwargs": None}}
        # 100 MB printed by a job: a normal return, nothing in the minion's output
        size = minion.log.stat().st_size
        assert c.cmd("m1", "probe.shout", [100], timeout=60) == {"m1": "done"}
        assert minion.log.stat().st_size - size < 100_000
        # a module file added later is found after saltutil.refresh_modules
        (mods / "late.py").write_text('__all__ = ["here"]\n\ndef here() -> bool:\n    return True\n')
        assert c.cmd("m1", "late.here", full_return=True)["m1"]["retcode"] == 1
        assert c.cmd("m1", "saltutil.refresh_modules") == {"m1": True}
        assert c.cmd("m1", "late.here") == {"m1": True}
        assert c.cmd("m1", "test.ping") == {"m1": True}
    assert minion.alive()


def test_unknown_functions_and_wrong_arguments_answer_as_salt(fleet):
    with LocalClient(cfg=fleet.cfg) as c:
        r = c.cmd("m1", "test.pnig", full_return=True)["m1"]
        assert r["retcode"] == 1 and r["ret"] == "'test.pnig' is not available. Did you mean: test.ping?"
        r = c.cmd("m1", "saltutil.runing", full_return=True)["m1"]
        assert r["retcode"] == 1 and r["ret"].startswith("'saltutil.runing' is not available. Did you mean: "
                                                         "saltutil.running")
        r = c.cmd("m1", "test.echo", full_return=True)["m1"]
        assert r["retcode"] == 1 and r["ret"].splitlines() == [
            "Passed invalid arguments to test.echo: missing a required argument: 'text'",
            "Usage: test.echo(text: str) -> str", "CLI example: rx '*' test.echo 'hello world'"]
        r = c.cmd("m1", "saltutil.find_job", full_return=True)["m1"]  # a built-in: same message
        assert r["retcode"] == 1 and r["ret"].startswith(
            "Passed invalid arguments to saltutil.find_job: missing a required argument: 'jid'")
        assert c.cmd("m1", "saltutil.sync_modules") == {"m1": []}  # nothing in the master's _modules
    out = fleet.run_cli("rx", "m1", "tset.ping", "--out", "json")
    assert out.returncode == 1, out.stderr
    assert json.loads(out.stdout) == {
        "m1": "'tset.ping' is not available. There is no module 'tset'. Did you mean: test.ping?"}


def test_job_time_limits(sandbox):
    sandbox.start_master()
    sandbox.start_minion("m1", job_timeout=1)
    with LocalClient(cfg=sandbox.cfg) as c:
        r = c.cmd("m1", "test.sleep", [120], timeout=60, full_return=True)["m1"]
        assert r["retcode"] == 1
        assert r["ret"] == "ERROR: the job ran longer than its time limit (1s, from job_timeout) and was killed"
        r = c.cmd("m1", "test.sleep", [120], kwarg={"timeout": 0.5}, timeout=60, full_return=True)["m1"]
        assert r["ret"] == "ERROR: the job ran longer than its time limit (0.5s, from its timeout= argument) " \
                           "and was killed"
        assert c.cmd("m1", "test.sleep", [1.5], kwarg={"timeout": 30}, timeout=60) == {"m1": True}
        r = c.cmd("m1", "cmd.run", ["sleep 120"], kwarg={"timeout": 0.5}, timeout=60, full_return=True)["m1"]
        assert r["retcode"] != 0 and "time limit" not in r["ret"]  # cmd.run's own timeout answered
        assert c.cmd("m1", "test.ping") == {"m1": True}


def test_saltutil_running_find_job_and_kill_job_on_a_running_job(fleet):
    with LocalClient(cfg=fleet.cfg) as c:
        jid = c.cmd_async("m1", "test.sleep", [120])

        def listed():
            return c.cmd("m1", "saltutil.running")["m1"]
        [job] = wait_for(listed, what="the job in saltutil.running")
        assert set(job) == {"arg", "fun", "jid", "pid", "ret", "tgt", "tgt_type", "user"}
        assert (job["jid"], job["fun"], job["arg"], job["tgt"], job["tgt_type"]) == (jid, "test.sleep", [120], "m1",
                                                                                      "glob")
        assert c.cmd("m1", "rxutil.find_job", [jid]) == {"m1": job}
        assert c.cmd("m1", "saltutil.find_job", ["20200101000000000000"]) == {"m1": {}}
        assert c.cmd("m1", "saltutil.kill_job", [jid]) == {"m1": f"Signal 9 sent to job {jid} at pid {job['pid']}"}
        returned: dict = {}
        thread = threading.Thread(target=lambda: returned.update(merged(c.get_cli_returns(jid, ["m1"], timeout=30))))
        thread.start()
        thread.join(60)
        assert returned == {"m1": "ERROR: the job process was killed by SIGKILL (rxutil.kill_job) before returning"}
        assert c.cmd("m1", "saltutil.find_job", [jid]) == {"m1": {}}
        assert c.cmd("m1", "saltutil.kill_job", [jid]) == {"m1": ""}


def test_rx_doc_on_the_cli(fleet):
    r = fleet.run_cli("rx", "-d", "test.echo")
    assert r.returncode == 0 and r.stdout.startswith("test.echo:\n    Return `text` unchanged.")
    r = fleet.run_cli("rx", "-d", "saltutil.kill_job")
    assert r.returncode == 0 and "(alias of rxutil.kill_job)" in r.stdout and "SIGKILL" in r.stdout
    r = fleet.run_cli("rx", "-d", "sys")
    assert r.returncode == 0 and "sys.reload_modules:" in r.stdout and "sys.argspec:" in r.stdout
    r = fleet.run_cli("rx", "-d", "nope.nothing")
    assert r.returncode == 2 and "no function matches 'nope.nothing'" in r.stderr
