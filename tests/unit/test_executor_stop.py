"""rx.minion.executor.Executor.stop, with real job processes: a job that ends within the grace period
returns its result; one still running after it is killed with its process group and returns an
error saying the minion was stopping; no job starts once the minion is stopping."""

from __future__ import annotations

import asyncio
import os

from rx.minion.executor import Executor
from rx.minion.registry import Registry
from rx.modules import ExecContext
from rx.transport.messages import Job


def _job(jid: str, fun: str, arg: list) -> Job:
    return Job(jid=jid, fun=fun, arg=arg, kwarg={}, tgt="*", tgt_type="glob", ts=0.0)


def _executor() -> Executor:
    registry = Registry()
    return Executor(registry, ExecContext(minion_id="web1", grains={}, registry=registry))


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


async def test_stop_waits_for_short_jobs_and_kills_the_rest_with_an_error_return(tmp_path):
    ex = _executor()
    marker = tmp_path / "started"
    short = asyncio.ensure_future(ex.run(_job("20240102030405060001", "test.sleep", [0.3])))
    long = asyncio.ensure_future(ex.run(_job("20240102030405060002", "cmd.run", [f"touch {marker}; sleep 300"])))
    while len(ex.running) < 2 or not marker.exists():
        await asyncio.sleep(0.01)
    group = ex.running["20240102030405060002"].pid

    await ex.stop(grace=3.0)
    assert await short == {"return": True, "retcode": 0, "success": True}
    killed = await long
    assert killed["retcode"] == 1 and killed["success"] is False
    assert killed["return"].startswith("ERROR: the minion was stopping") and "job_stop_timeout (3s)" in killed["return"]
    assert ex.running == {}
    for _ in range(500):  # the shell's sleep, in the job's group, is gone too
        if not _group(group):
            break
        await asyncio.sleep(0.01)
    else:
        raise AssertionError(f"processes of the killed job's group {group} survived: {_group(group)}")

    late = await ex.run(_job("20240102030405060003", "test.ping", []))
    assert late["success"] is False and "not started" in late["return"]


def _group(pgid: int) -> list[int]:
    """Live processes in process group `pgid`."""
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit() and _alive(int(name)):
            try:
                if os.getpgid(int(name)) == pgid:
                    out.append(int(name))
            except OSError:
                continue
    return out


async def test_stop_with_nothing_running_returns_at_once():
    ex = _executor()
    await asyncio.wait_for(ex.stop(grace=30.0), 5.0)
    assert ex.stopping
