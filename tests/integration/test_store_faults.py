"""Issue #9 items 2, 3, 7 and 8: faults in the master's job cache, injected into running daemons.

- The returns database made immutable (chattr +i): no MWorker dies (a write to the mapped -shm of
  an immutable file was a SIGBUS in every worker at once), returns are answered "unavailable" (retry),
  and once the fault is gone the minions' retries are stored.
- The cache on a full tmpfs: jobs are still published (the client is told their record is not
  stored), and their returns are stored once there is room again.
- The returns database deleted under a running master (or while it is down): noticed, re-created,
  new returns land in the new file, the gap is logged and on the bus, and `rx-run jobs.lookup_jid`
  of a job whose returns went with the old file says so with exit 3.
- `jobs.find` probes write no job directory; a tiny `job_cache_max_mb` removes the oldest jobs.
- A child that keeps dying is restarted with a growing, logged delay.

chattr and mount need root and a file system that supports them: the tests that need them skip with
the reason printed when the runner cannot.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from conftest import EventWatch, FakeMinion
from rx.client.local import LocalClient
from rx.master.store import JobRecord, open_stores, store_config
from rx.transport.ids import new_jid
from rx.transport.messages import Job, JobReturn
from tests.support.procs import children_of, wait_for

DB = ".returns.sqlite"


def _skip(reason: str) -> None:
    print(f"SKIP: {reason}", file=sys.stderr)
    pytest.skip(reason)


def _db_files(box) -> list[Path]:
    jobs = Path(box.cfg.jobs_dir)
    return [p for p in (jobs / DB, jobs / f"{DB}-wal", jobs / f"{DB}-shm") if p.exists()]


def _chattr(flag: str, paths: list[Path]) -> subprocess.CompletedProcess:
    return subprocess.run(["chattr", flag, *map(str, paths)], capture_output=True, text=True)


@contextlib.contextmanager
def immutable(paths: list[Path]) -> Iterator[None]:
    """The files made immutable (chattr +i) for the duration; skips the test where that cannot be done."""
    try:
        r = _chattr("+i", paths)
    except FileNotFoundError:
        _skip("chattr is not installed")
    if r.returncode != 0:
        _skip(f"chattr +i is not possible here: {r.stderr.strip()}")
    try:
        yield
    finally:
        _chattr("-i", paths)


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str = "4m") -> Iterator[None]:
    """A small tmpfs mounted on `path` (lazily unmounted after); skips the test where mounting is refused."""
    path.mkdir(parents=True, exist_ok=True)
    try:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
                           capture_output=True, text=True)
    except FileNotFoundError:
        _skip("mount is not installed")
    if r.returncode != 0:
        _skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _fill(directory: Path) -> Path:
    """Fill the file system of `directory` to the last byte; returns the filler file."""
    filler = directory / "filler"
    chunk = b"\0" * 65536
    with open(filler, "wb", buffering=0) as fh:
        while True:
            try:
                fh.write(chunk)
            except OSError:
                break
        for size in (4096, 512, 1):
            try:
                while True:
                    fh.write(chunk[:size])
            except OSError:
                continue
    return filler


def _lookup(box, jid: str) -> tuple[int, object, str]:
    r = box.run_cli("rx-run", "jobs.lookup_jid", jid, "--out", "json")
    return r.returncode, json.loads(r.stdout) if r.stdout.strip() else None, r.stderr


def _stored(box, jid: str, expected: dict) -> bool:
    rc, data, _err = _lookup(box, jid)
    return rc == 0 and data == expected


def _ret(jid: str) -> dict:
    return JobReturn(jid=jid, fun="test.ping", fun_args=[], retcode=0, success=True, ret=True).to_wire()


def test_an_immutable_returns_database_kills_no_worker_and_returns_are_stored_after(fleet):
    """Items 2 and 7: every worker stays (same pids), answers "unavailable" while the files are immutable, and
    the minions' retried returns are stored once the fault is gone."""
    both = {"m1": True, "m2": True}
    with LocalClient(cfg=fleet.cfg) as c:
        assert c.cmd("*", "test.ping") == both  # every worker has the database open
    fake = FakeMinion(fleet, "fake")
    try:
        assert fake.auth() == "accepted"
        kids = sorted(children_of(fleet.master.pid))
        with immutable(_db_files(fleet)):
            with LocalClient(cfg=fleet.cfg) as c:
                jid = c.cmd_async(["m1", "m2", "fake"], "test.ping", tgt_type="list")
            for _ in range(4):  # fair-queued over both workers
                reply = fake.send_sealed(fake.sealed("_return", _ret(jid)))
                assert reply.get("ok") is False and reply["error"]["type"] == "unavailable", reply
            wait_for(lambda: all("could not take it" in fleet.minions[m].output() for m in both), timeout=20,
                     what="both minions told to retry their return")
            assert sorted(children_of(fleet.master.pid)) == kids
        wait_for(lambda: _stored(fleet, jid, both), timeout=40, what="the retried returns stored")
        assert fake.send_sealed(fake.sealed("_return", _ret(jid))) == {"ok": True}
        assert _stored(fleet, jid, {**both, "fake": True})
    finally:
        fake.close()
    assert sorted(children_of(fleet.master.pid)) == kids
    out = fleet.master.output()
    assert "killed by" not in out and "restarting" not in out, out[-3000:]
    assert 'the job store failed; answering "retry later"' in out and "not writable" in out


def test_a_full_cache_disk_still_publishes_and_stores_the_returns_once_there_is_room(sandbox):
    """Items 2 and 8: with the cachedir on a full tmpfs, `rx '*' test.ping` still reaches the minion, the client
    is told the record is not stored, and the return is stored once space is freed."""
    cache = sandbox.root / "cache"
    with small_tmpfs(cache):
        sandbox.start_master(cachedir=str(cache))
        sandbox.start_minion("m1")
        with LocalClient(cfg=sandbox.cfg) as c:
            assert c.cmd("*", "test.ping") == {"m1": True}
        filler = _fill(cache)
        with EventWatch(sandbox.cfg, "rx/job/") as watch:
            r = sandbox.run_cli("rx", "*", "test.ping", "-t", "2", "--gather-job-timeout", "1")
            jid = watch.next(match=lambda t: t.endswith("/new"))[0].split("/")[2]
        assert "could not store job" in r.stderr, (r.returncode, r.stdout, r.stderr)
        wait_for(lambda: f"job {jid}: test.ping" in sandbox.minions["m1"].output(), what="the job ran on m1")
        filler.unlink()
        wait_for(lambda: _stored(sandbox, jid, {"m1": True}), timeout=40, what="the return stored once there is room")
        sandbox.close()


def test_a_deleted_returns_database_is_noticed_recreated_and_the_gap_reported(fleet):
    """Item 3: new returns land in a new database, the master logs it and fires rx/job_cache/lost, and the
    lookup of a job whose returns were in the deleted file says so (exit 3)."""
    both = {"m1": True, "m2": True}
    old = asyncio.run(_job_with_a_return(fleet.cfg))
    assert _stored(fleet, old, {RETIRED: "pong"})
    with EventWatch(fleet.cfg, "rx/job_cache/") as watch:
        for path in _db_files(fleet):
            path.unlink()
        with LocalClient(cfg=fleet.cfg) as c:
            assert c.cmd("*", "test.ping") == both
            new = c.cmd_async("*", "test.ping")
        wait_for(lambda: _stored(fleet, new, both), what="returns after the deletion, stored")
        tag, data = watch.next(timeout=20)
    assert tag == "rx/job_cache/lost" and "deleted or replaced" in data["message"]
    with sqlite3.connect(Path(fleet.cfg.jobs_dir) / DB) as db:  # in the file at the path, not an unlinked one
        assert db.execute("SELECT count(*) FROM ret WHERE jid = ?", (new,)).fetchone() == (2,)
    rc, data, err = _lookup(fleet, old)
    assert rc == 3 and data == {} and f"returns of job {old} may be lost" in err, (rc, data, err)
    assert "was deleted or replaced while the master was using it" in fleet.master.output()


RETIRED = "m-retired"
"""The one minion of the stored job: not in the fleet, so no live minion finds the job by catch-up (`_missed`
lists the jobs addressed to a minion since it connected, published or not) and returns it again."""


async def _job_with_a_return(cfg) -> str:
    """A job and the return of a minion no longer in the fleet, stored by this process (as if long ago: no worker
    wrote it)."""
    stores = open_stores(store_config(cfg))
    try:
        jid = new_jid()
        await stores.jobs.create_job(JobRecord(Job(jid=jid, fun="test.ping", arg=[], kwarg={}, tgt=RETIRED,
                                                   tgt_type="glob", ts=time.time()), [RETIRED]))
        await stores.jobs.store_return(jid, RETIRED, {"return": "pong", "retcode": 0, "success": True})
        return jid
    finally:
        stores.close()


def test_a_returns_database_deleted_while_the_master_is_down_is_reported(fleet):
    with LocalClient(cfg=fleet.cfg) as c:
        old = c.cmd_async("m1", "test.ping")
    wait_for(lambda: _stored(fleet, old, {"m1": True}), what="the job's return")
    assert fleet.stop_master() == 0
    for path in _db_files(fleet):
        path.unlink()
    fleet.start_master()
    assert "is missing but 1 job(s) are kept: their returns are lost" in fleet.master.output()
    rc, _data, err = _lookup(fleet, old)
    assert rc == 3 and "may be lost" in err, (rc, err)


def test_probes_write_no_job_directory(fleet):
    """Item 8: a client's `jobs.find` probes of a late minion are not stored as jobs."""
    jobs = Path(fleet.cfg.jobs_dir)
    before = {p.name for p in jobs.iterdir() if p.is_dir()}
    with EventWatch(fleet.cfg, "rx/job/") as watch:
        r = fleet.run_cli("rx", "m1", "test.sleep", "3", "-t", "1", "--gather-job-timeout", "1", "--out", "json")
        news = [d for t, d in watch.drain(1.0) if t.endswith("/new")]
    assert r.returncode == 0 and json.loads(r.stdout) == {"m1": True}, (r.stdout, r.stderr)
    probes = [n for n in news if n["fun"] == "jobs.find"]
    assert probes, "the client probed the late minion"
    added = {p.name for p in jobs.iterdir() if p.is_dir()} - before
    assert len(added) == 1, added  # the job, not its probes


def test_a_tiny_job_cache_max_mb_removes_the_oldest_jobs_with_a_warning(sandbox):
    """Item 8: over `job_cache_max_mb`, maintenance removes the oldest jobs first and says so."""
    sandbox.start_master(job_cache_max_mb=0.25)
    sandbox.start_minion("m1")
    with EventWatch(sandbox.cfg, "rx/job_cache/") as watch:
        with LocalClient(cfg=sandbox.cfg) as c:
            jids = [c.cmd_async("m1", "test.ping") for _ in range(40)]
        tag, data = watch.next(timeout=30)
    assert tag == "rx/job_cache/trimmed" and "over job_cache_max_mb=0.25" in data["message"]
    kept = sorted(p.name for p in Path(sandbox.cfg.jobs_dir).iterdir() if p.name in jids)
    assert kept and len(kept) < len(jids)
    assert kept == jids[len(jids) - len(kept):], "the oldest went first"
    assert "over job_cache_max_mb" in sandbox.master.output()


def test_a_child_that_keeps_dying_is_restarted_with_a_growing_logged_delay(fleet):
    """Item 7: no restart loop; each death is logged with its cause, from the third start on with a delay."""
    kids = set(children_of(fleet.master.pid))

    def replaced(victim: int) -> set[int]:
        now = set(children_of(fleet.master.pid))
        return now - kids if len(now) == len(kids) and victim not in now else set()
    victim = max(kids)
    for _ in range(4):
        os.kill(victim, signal.SIGKILL)
        new = wait_for(lambda: replaced(victim), timeout=20, what="the child restarted")
        kids = (kids - {victim}) | new
        victim = new.pop()
    out = fleet.master.output()
    assert "was killed by SIGKILL" in out, out[-2000:]
    assert "restarting it in 1s (3 starts in the last 60s)" in out and "restarting it in 2s (4 starts" in out
    with LocalClient(cfg=fleet.cfg) as c:
        assert c.cmd("*", "test.ping") == {"m1": True, "m2": True}
