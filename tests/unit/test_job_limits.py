"""Jobs on the minion, with real job processes (rx.minion.executor.Executor): time limits (job_timeout,
the call's timeout=), what a job prints, returns the wire cannot carry as they are, and the built-ins
acting on the job table (rxutil.*, Salt's saltutil.*)."""

from __future__ import annotations

import asyncio
import os
import signal
import textwrap
import time
from pathlib import Path

import pytest

from rx.config import MinionConfig
from rx.minion import calls
from rx.minion.calls import call_builtin
from rx.minion.executor import Executor
from rx.minion.registry import Registry
from rx.modules import ExecContext
from rx.transport.messages import Job

CUSTOM = '''
import os, time
__all__ = ["noisy", "wait", "stubborn", "give", "big"]

def noisy():
    chunk = "x" * (1 << 20)
    for _ in range(100):          # 100 MB through print, then straight to the file descriptor
        print(chunk)
    os.write(1, b"y" * (1 << 20))
    return "done"

def wait(seconds, timeout=None):
    """Sleeps `seconds`, or `timeout` when that is shorter, and says which."""
    if timeout is not None and float(timeout) < float(seconds):
        time.sleep(float(timeout))
        return "my own timeout"
    time.sleep(float(seconds))
    return "slept"

def stubborn(seconds, timeout=None):
    """Declares a timeout but ignores it."""
    time.sleep(float(seconds))
    return "slept"

class Thing:
    def __repr__(self):
        return "<Thing>"

class Broken:
    def __repr__(self):
        raise RuntimeError("no repr")

def give(what):
    import datetime
    values = {"object": Thing(), "generator": (i for i in range(3)), "date": datetime.date(2024, 1, 2),
              "huge_int": 2 ** 70, "negative_huge": -(2 ** 70), "nan": float("nan"), "set": {3},
              "bad_repr": Broken(), "exception": ValueError("as a value")}
    if what == "itself":
        loop = []
        loop.append(loop)
        return loop
    return values[what]

def big(mb):
    return "z" * int(mb * (1 << 20))
'''


def _job(fun, arg=(), kwarg=None, jid="20240102030405060708") -> Job:
    return Job(jid=jid, fun=fun, arg=list(arg), kwarg=kwarg or {}, tgt="web1", tgt_type="glob", ts=0.0, user="root")


def _executor(tmp_path: Path, job_timeout: float = 0.0) -> Executor:
    mods = tmp_path / "mods"
    mods.mkdir(exist_ok=True)
    (mods / "custom.py").write_text(textwrap.dedent(CUSTOM))
    cfg = MinionConfig(id="web1", module_dirs=(str(mods),), job_timeout=job_timeout)
    registry = Registry(cfg)
    registry.context = ExecContext(minion_id="web1", config=cfg, registry=registry)
    return Executor(registry, registry.context)


def _group_alive(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group `pgid`, after giving a dying group 5 s to go."""
    for _ in range(500):
        live = []
        for name in filter(str.isdigit, os.listdir("/proc")):
            try:
                state = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if state[0] not in "ZX" and int(state[2]) == pgid:
                live.append(int(name))
        if not live:
            return []
        time.sleep(0.01)
    return live


async def _started(ex: Executor, jid: str) -> int:
    while jid not in ex.running:
        await asyncio.sleep(0.01)
    return ex.running[jid].pid


# ---------------------------------------------------------------- time limits

async def test_job_timeout_ends_a_runaway_job_with_a_clear_return(tmp_path):
    ex = _executor(tmp_path, job_timeout=0.5)
    task = asyncio.ensure_future(ex.run(_job("cmd.run", ["sleep 300"])))
    pid = await _started(ex, "20240102030405060708")
    out = await task
    assert out == {"return": "ERROR: the job ran longer than its time limit (0.5s, from job_timeout) and was killed",
                   "retcode": 1, "success": False}
    assert not _group_alive(pid)  # the shell's sleep went with it
    assert ex.running == {}


async def test_the_calls_timeout_overrides_job_timeout_for_a_function_without_its_own(tmp_path):
    ex = _executor(tmp_path)  # no job_timeout
    out = await ex.run(_job("test.sleep", [300], {"timeout": 0.5}))
    assert out["return"] == "ERROR: the job ran longer than its time limit (0.5s, from its timeout= argument) " \
                            "and was killed"
    longer = _executor(tmp_path, job_timeout=0.2)
    assert await longer.run(_job("test.sleep", [0.6], {"timeout": 30})) == {"return": True, "retcode": 0,
                                                                           "success": True}


async def test_a_function_with_its_own_timeout_gets_it_and_answers_first(tmp_path):
    ex = _executor(tmp_path, job_timeout=0.3)
    out = await ex.run(_job("custom.wait", [300], {"timeout": 0.5}))  # past job_timeout: the call's wins
    assert out == {"return": "my own timeout", "retcode": 0, "success": True}
    out = await ex.run(_job("cmd.run", ["sleep 300"], {"timeout": 0.5}))
    assert out["success"] is False and "time limit" not in out["return"]  # cmd.run's own timeout answered


async def test_a_function_ignoring_its_own_timeout_is_ended_after_the_grace(tmp_path, monkeypatch):
    monkeypatch.setattr(calls, "TIMEOUT_GRACE", 0.5)  # read in the job process, forked after this
    out = await _executor(tmp_path).run(_job("custom.stubborn", [300], {"timeout": 0.2}))
    assert out["return"] == "ERROR: the job ran longer than its time limit (0.7s, from its timeout= argument) " \
                            "and was killed"


@pytest.mark.parametrize("timeout", ["soon", 0, -1, float("nan"), [1]])
async def test_a_bad_timeout_is_refused_before_the_function_runs(tmp_path, timeout):
    out = await _executor(tmp_path).run(_job("test.sleep", [300], {"timeout": timeout}))
    assert out == {"return": f"ERROR: timeout={timeout!r}: the job's time limit must be a number of seconds > 0",
                   "retcode": 1, "success": False}


@pytest.mark.parametrize("script", ["trap '' TERM; sleep 300", "trap '' TERM; sleep 300 & wait; sleep 300"])
async def test_what_a_job_started_and_ignores_sigterm_is_killed_too(tmp_path, script):
    ex = _executor(tmp_path, job_timeout=0.5)
    task = asyncio.ensure_future(ex.run(_job("cmd.run", [script])))
    pid = await _started(ex, "20240102030405060708")
    assert "ran longer than its time limit (0.5s" in (await task)["return"]
    assert _group_alive(pid) == []


# ---------------------------------------------------------------- what a job prints and returns

async def test_a_job_printing_100_mb_returns_normally_and_prints_nothing(tmp_path, capfd):
    out = await _executor(tmp_path).run(_job("custom.noisy"))
    assert out == {"return": "done", "retcode": 0, "success": True}
    printed = capfd.readouterr()
    assert "xxxxxxxx" not in printed.out and "yyyyyyyy" not in printed.out


@pytest.mark.parametrize("what, value", [
    ("object", "<Thing>"),
    ("date", "datetime.date(2024, 1, 2)"),
    ("huge_int", str(2 ** 70)),
    ("negative_huge", str(-(2 ** 70))),
    ("set", [3]),
    ("bad_repr", "<Broken object: repr failed: RuntimeError>"),
    ("exception", "ValueError('as a value')"),
])
async def test_a_return_msgpack_cannot_carry_arrives_as_text(tmp_path, what, value):
    assert await _executor(tmp_path).run(_job("custom.give", [what])) == {"return": value, "retcode": 0,
                                                                          "success": True}


async def test_odd_returns_are_errors_or_text_never_a_lost_job(tmp_path):
    ex = _executor(tmp_path)
    gen = await ex.run(_job("custom.give", ["generator"]))
    assert gen["return"].startswith("<generator object give.<locals>.<genexpr>")
    nan = await ex.run(_job("custom.give", ["nan"]))
    assert nan["success"] is True and nan["return"] != nan["return"]  # NaN travels as a float
    loop = await ex.run(_job("custom.give", ["itself"]))
    assert loop == {"return": "ERROR: the return value cannot be sent: it nests too deep (or contains itself)",
                    "retcode": 1, "success": False}
    big = await ex.run(_job("custom.big", [13]))
    assert big["success"] is False and big["return"].startswith("ERROR: the return value cannot be sent: ")
    assert "over the 12582912-byte limit" in big["return"]


# ---------------------------------------------------------------- built-ins on the job table

class Host:
    """The minion as the built-ins see it: a real Executor; refreshes are counted."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self.refreshed: list[str] = []

    async def refresh_grains(self) -> dict:
        self.refreshed.append("grains")
        return {"os": "Debian"}

    def refresh_modules(self) -> None:
        self.refreshed.append("modules")

    async def refresh_pillar(self) -> str:
        self.refreshed.append("pillar")
        return ""


async def _builtin(ex: Executor, host: Host, fun: str, *args, **kwargs) -> dict:
    ex.registry.attach_host(host)
    handler = ex.registry.builtin(fun)
    assert handler is not None, fun
    return await call_builtin(handler, fun, list(args), kwargs)


@pytest.mark.parametrize("fun", ["rxutil", "saltutil"])
async def test_running_find_job_and_signals_read_the_job_table(tmp_path, fun):
    ex = _executor(tmp_path)
    host = Host(ex)
    jid = "20240102030405060999"
    task = asyncio.ensure_future(ex.run(_job("test.sleep", [300], {"timeout": 100}, jid=jid)))
    pid = await _started(ex, jid)
    data = {"arg": [300, {"timeout": 100}], "fun": "test.sleep", "jid": jid, "pid": pid, "ret": "",
            "tgt": "web1", "tgt_type": "glob", "user": "root"}  # Salt's shape
    assert (await _builtin(ex, host, f"{fun}.running"))["return"] == [data]
    assert (await _builtin(ex, host, f"{fun}.find_job", jid))["return"] == data
    assert (await _builtin(ex, host, f"{fun}.is_running", "test.*"))["return"] == [data]
    assert (await _builtin(ex, host, f"{fun}.is_running", "cmd.*"))["return"] == []
    assert (await _builtin(ex, host, f"{fun}.find_job", "20240102030405060000"))["return"] == {}
    assert (await _builtin(ex, host, f"{fun}.signal_job", "20240102030405060000", 15))["return"] == ""
    sent = await _builtin(ex, host, f"{fun}.signal_job", jid, "TERM")
    assert sent == {"return": f"Signal 15 sent to job {jid} at pid {pid}", "retcode": 0, "success": True}
    out = await task
    assert out["return"] == "ERROR: the job process was killed by SIGTERM (rxutil.signal_job) before returning"
    assert (await _builtin(ex, host, f"{fun}.find_job", jid))["return"] == {}


async def test_kill_job_and_kill_all_jobs(tmp_path):
    ex = _executor(tmp_path)
    host = Host(ex)
    jids = ["20240102030405061001", "20240102030405061002"]
    tasks = [asyncio.ensure_future(ex.run(_job("cmd.run", ["sleep 300"], jid=j))) for j in jids]
    pids = [await _started(ex, j) for j in jids]
    killed = await _builtin(ex, host, "saltutil.kill_job", jids[0])
    assert killed["return"] == f"Signal {int(signal.SIGKILL)} sent to job {jids[0]} at pid {pids[0]}"
    assert (await tasks[0])["return"] == ("ERROR: the job process was killed by SIGKILL (rxutil.kill_job) "
                                          "before returning")
    assert (await _builtin(ex, host, "rxutil.term_all_jobs"))["return"] == [
        f"Signal 15 sent to job {jids[1]} at pid {pids[1]}"]
    assert "SIGTERM (rxutil.term_all_jobs)" in (await tasks[1])["return"]
    assert (await _builtin(ex, host, "rxutil.kill_all_jobs"))["return"] == []
    assert not any(_group_alive(p) for p in pids)


@pytest.mark.parametrize("fun, args, kwargs, value, rc", [
    ("rxutil.signal_job", ["20240102030405060000", "NOPE"], {},
     "ERROR: 'NOPE' is not a signal: give a number (15) or a name (TERM, SIGTERM)", 1),
    ("rxutil.signal_job", ["20240102030405060000"], {},
     "Passed invalid arguments to rxutil.signal_job: missing a required argument: 'sig'\n"
     "Usage: rxutil.signal_job(jid: str, sig: Any) -> str\n"
     "CLI example: rx '*' rxutil.signal_job 20261122051020123456 15", 1),
    ("rxutil.refresh_modules", [], {"async": False}, True, 0),
    ("rxutil.refresh_modules", [], {"asynch": False}, "ERROR: unexpected keyword argument(s): asynch", 1),
    ("saltutil.refresh_grains", [], {}, True, 0),
    ("sys.reload_modules", [], {}, True, 0),
    ("jobs.running", [], {}, [], 0),
    ("grains.refresh", [], {}, {"os": "Debian"}, 0),
])
async def test_builtin_returns_and_errors(tmp_path, fun, args, kwargs, value, rc):
    ex = _executor(tmp_path)
    out = await _builtin(ex, Host(ex), fun, *args, **kwargs)
    assert out == {"return": value, "retcode": rc, "success": rc == 0}


async def test_refreshes_reach_the_minion(tmp_path):
    ex = _executor(tmp_path)
    host = Host(ex)
    await _builtin(ex, host, "saltutil.refresh_grains")
    await _builtin(ex, host, "saltutil.refresh_modules")
    await _builtin(ex, host, "sys.reload_modules")
    assert host.refreshed == ["grains", "modules", "pillar", "modules", "modules"]
    await _builtin(ex, host, "saltutil.refresh_grains", refresh_pillar=False)
    await _builtin(ex, host, "rxutil.refresh_pillar")
    assert host.refreshed[5:] == ["grains", "modules", "pillar"]
