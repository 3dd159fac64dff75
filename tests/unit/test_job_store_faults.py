"""Faults in the local job store's files (issue #9 items 2, 3, 7, 8), on a real file system: immutable
files are refused without touching SQLite's mapping (no SIGBUS) and recovered from, a deleted database is
re-created with its gap recorded, probes are rows that expire, the size bound removes the oldest jobs, and
a job record that cannot be written is kept and written later.  And the supervisor's restart delay."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rx.master.daemon import exit_reason, restart_delay
from rx.master.store import JobRecord, ReturnsLost, StoreUnavailable, UnknownJob
from rx.master.store.sqlite_jobs import DB_NAME, JOB_DIR_BYTES, SqliteJobStore
from rx.transport.ids import new_jid
from rx.transport.messages import Job


def _record(jid: str, fun: str = "test.ping", minions: tuple[str, ...] = ("web1",)) -> JobRecord:
    return JobRecord(Job(jid=jid, fun=fun, arg=[], kwarg={}, tgt="*", tgt_type="glob", ts=time.time()), list(minions))


def _chattr(flag: str, *paths: Path) -> None:
    try:
        r = subprocess.run(["chattr", flag, *map(str, paths)], capture_output=True, text=True)
    except FileNotFoundError:
        r = None
    if r is None or r.returncode != 0:
        reason = f"chattr {flag} is not possible here: {r.stderr.strip() if r else 'not installed'}"
        print(f"SKIP: {reason}", file=sys.stderr)
        pytest.skip(reason)


def _db_files(root: Path) -> list[Path]:
    return [p for p in root.glob(DB_NAME + "*")]


async def _eventually(call, timeout: float = 10.0):
    """`await call()` until it does not raise StoreUnavailable (or the deadline passes)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await call()
        except StoreUnavailable:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


@pytest.fixture
def jobs(tmp_path):
    store = SqliteJobStore(tmp_path / "jobs")
    asyncio.run(store.prepare())
    yield store
    subprocess.run(["chattr", "-R", "-i", str(tmp_path)], capture_output=True)
    store.close()


async def test_immutable_database_files_are_refused_then_used_again(jobs, tmp_path):
    """No SIGBUS: while the -shm cannot be written nothing touches SQLite; a connection opened meanwhile by
    another process-like store is not left read-only."""
    jid = new_jid()
    await jobs.create_job(_record(jid))
    assert await jobs.store_return(jid, "web1", {"return": 1}) is True
    files = _db_files(tmp_path / "jobs")
    _chattr("+i", *files)
    late = SqliteJobStore(tmp_path / "jobs")
    try:
        for store in (jobs, late):
            with pytest.raises(StoreUnavailable, match="not writable"):
                await store.has_return(jid, "web1")
        _chattr("-i", *files)
        for store in (jobs, late):
            assert await _eventually(lambda: store.has_return(jid, "web1"))  # reopening is tried at most twice a second
        assert await late.store_return(jid, "web1", {"return": 2}) is False  # writes again: no read-only wedge
    finally:
        late.close()


async def test_a_deleted_database_is_recreated_with_the_recent_returns_and_the_gap(jobs, tmp_path):
    old, recent = new_jid(time.time() - 60), new_jid()
    for jid in (old, recent):
        await jobs.create_job(_record(jid))
    await jobs.store_return(old, "web1", {"return": "old"})
    await jobs.db.check()  # a second passed: what was written before is no longer copied over
    await jobs.store_return(recent, "web1", {"return": "recent"})
    for path in _db_files(tmp_path / "jobs"):
        path.unlink()
    assert await jobs.has_return(recent, "web1")  # noticed at once (the -shm went too), copied over
    assert (tmp_path / "jobs" / DB_NAME).exists()
    gaps = await jobs.check()
    assert len(gaps) == 1 and "was deleted or replaced" in gaps[0] and await jobs.check() == []
    for jid, kept in ((old, {}), (recent, {"web1": {"return": "recent"}})):
        with pytest.raises(ReturnsLost) as info:
            await jobs.returns(jid)
        assert info.value.partial == kept
    later = new_jid(time.time() + 1)
    await jobs.create_job(_record(later))
    await jobs.store_return(later, "web1", {"return": "new"})
    assert await jobs.returns(later) == {"web1": {"return": "new"}}


async def test_probes_are_rows_that_expire(jobs, tmp_path):
    probe = new_jid()
    await jobs.create_job(_record(probe, fun="jobs.find"))
    assert not (tmp_path / "jobs" / probe).exists() and await jobs.jids() == []
    other = SqliteJobStore(tmp_path / "jobs")  # another worker reads the probe's record from the database
    try:
        assert await other.store_return(probe, "web1", {"return": {}}) is True
        assert (await other.get_job(probe)).job.fun == "jobs.find"
    finally:
        other.close()
    assert await jobs.expire_probes(time.time() - 60) == 0
    assert await jobs.expire_probes(time.time() + 1) == 1
    with pytest.raises(UnknownJob):
        await jobs.get_job(probe)
    assert not await jobs.has_return(probe, "web1")


async def test_trim_removes_the_oldest_jobs_first(jobs):
    jids = [new_jid(1_800_000_000 + i) for i in range(30)]
    for jid in jids:
        await jobs.create_job(_record(jid))
        await jobs.store_return(jid, "web1", {"return": "x" * 20_000})
    used = await jobs.usage()
    assert used >= 30 * (JOB_DIR_BYTES + 20_000)
    assert await jobs.trim(used) is None
    bound = used // 2
    trimmed = await jobs.trim(bound)
    assert trimmed is not None and trimmed.used == used
    kept = await jobs.jids()
    assert kept == jids[len(jids) - len(kept):] and trimmed.removed == len(jids) - len(kept) > 0
    assert trimmed.first_kept == kept[0]
    assert await jobs.usage() <= bound
    assert not await jobs.has_return(jids[0], "web1") and await jobs.has_return(kept[0], "web1")


async def test_a_record_that_cannot_be_written_is_kept_and_written_later(jobs, tmp_path):
    """The publishing process keeps it (its returns are taken); another process answers "retry" for it."""
    root = tmp_path / "jobs"
    jid = new_jid()
    other = SqliteJobStore(root)
    try:
        await other.has_return(jid, "web1")  # the database is open before the fault
        _chattr("+i", root)
        with pytest.raises(StoreUnavailable, match="cannot store job"):
            await jobs.create_job(_record(jid))
        assert not (root / jid).exists() and (await jobs.get_job(jid)).job.jid == jid
        with pytest.raises(StoreUnavailable, match="no record"):
            await other.store_return(jid, "web1", {"return": 1})
        with pytest.raises(UnknownJob):  # an old jid without a record is unknown, as before
            await other.store_return(new_jid(time.time() - 3600), "web1", {"return": 1})
        await jobs.flush()
        assert not (root / jid).exists()
        _chattr("-i", root)
        await jobs.flush()
        assert (root / jid / ".load").exists()
        assert await other.store_return(jid, "web1", {"return": 1}) is True
    finally:
        other.close()


@pytest.mark.parametrize("starts, delay", [
    ([], 0.0), ([0.0], 0.0), ([0.0, 1.0], 0.0), ([0.0, 1.0, 2.0], 1.0), ([0.0, 1.0, 2.0, 3.0], 2.0),
    ([float(i) for i in range(20)], 60.0), ([-100.0, -90.0, 0.0], 0.0),
])
def test_restart_delay_grows_only_for_a_child_that_keeps_dying(starts, delay):
    assert restart_delay(starts, now=5.0) == delay


@pytest.mark.parametrize("exitcode, words", [
    (-signal.SIGBUS, "was killed by SIGBUS (a fault in a memory-mapped file"), (-signal.SIGKILL, "killed by SIGKILL"),
    (1, "exited with status 1"), (-200, "killed by signal 200"),
])
def test_exit_reason_names_the_signal(exitcode, words):
    assert exit_reason(exitcode).startswith(words) or words in exit_reason(exitcode)
