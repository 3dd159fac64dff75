"""The local job store: one directory per jid holding the job record, and the returns in one
SQLite table (WAL) keyed by (jid, id); the replay guard's nonces in a second table; the records of
`jobs.find` probes in a third (a client probes every late minion: a directory each would fill the
cache, so they are rows that expire after PROBE_KEEP_SECONDS).  `sqlite_db.Db` keeps a fault in the
database's files from killing the process or losing returns silently.

`INSERT OR IGNORE` on (jid, id) makes storing a return atomic across MWorker processes: a
second return for the same pair (a replay or a duplicate) is refused without touching the
first.  Writes run inline with no busy wait (~15 µs); only when another writer holds the lock
(a retention purge) does the write move to a thread that waits, so the event loop never stalls.

A job record that cannot be written (a full disk) is kept by the process that published it and
written at its next store operation; meanwhile a return for a recent job without a record gets
StoreUnavailable (retry later), not UnknownJob.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import os
import shutil
import time
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from rx.master.store.base import (PROBE_FUNS, ExpectedCache, JobExists, JobQuery, JobRecord, JobTarget,
                                  NotExpected, StoreError, Trimmed, UnknownJob, check_record, expected_rows)
from rx.master.store.errors import ReturnsLost, StoreUnavailable
from rx.master.store.sqlite_db import Db
from rx.transport.codec import DecodeError, decode, encode
from rx.transport.ids import JID_RE, new_jid, validate_minion_id

if TYPE_CHECKING:
    import sqlite3

__all__ = ["DB_NAME", "Db", "SqliteJobStore", "SqliteReplayGuard"]

log = logging.getLogger("rx.master.store")

DB_NAME = ".returns.sqlite"
RECORD_GRACE_SECONDS = 120.0
"""A return for a job this recent without a record is answered "retry": its record may not be written yet."""
UNWRITTEN_MAX = 256
JOB_DIR_BYTES = 8192
"""What a job's directory and record take on disk (two blocks), for the size bound."""
TRIM_TO = 0.9
"""Trimming to the size bound removes the oldest jobs until the cache is this fraction of it."""
PURGE_BATCH = 2000
"""A purge deletes returns this many rows a statement (a few ms of the write lock each), so a return
arriving meanwhile waits for one batch at most, never for the whole purge."""


class SqliteJobStore:
    def __init__(self, jobs_dir: str | Path, db: Db | None = None) -> None:
        self.root = Path(jobs_dir)
        self.db = db or Db(self.root / DB_NAME)
        self._listing: tuple[int, list[str]] | None = None
        self._targets = ExpectedCache()
        self._unwritten: OrderedDict[str, JobRecord] = OrderedDict()

    async def prepare(self) -> None:
        """The jobs directory; a corrupt returns database is moved aside (the master does this at start, before
        any other process opens it); a returns database missing while jobs are kept is a gap, recorded and
        logged."""
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)
        if self.db.path.exists() and (why := await asyncio.to_thread(corrupt, self.db.path)):
            aside = await asyncio.to_thread(move_aside, self.db.path)
            log.error("job cache: %s is corrupt (%s): moved to %s and continuing with a new one; the returns kept "
                      "in it are lost to rx-run (`sqlite3 %s .recover | sqlite3 %s` may rescue them; see the README)",
                      self.db.path, why, aside, aside, self.db.path)
        if not self.db.path.exists() and (kept := self._list()):
            lost_before = new_jid(time.time())
            log.error("job cache: %s is missing but %d job(s) are kept: their returns are lost (rx-run "
                      "jobs.lookup_jid says so for those jobs)", self.db.path, len(kept))
            await self.db.run(lambda c: c.execute("INSERT OR IGNORE INTO meta VALUES ('lost_before', ?)",
                                                  (lost_before,)))

    def close(self) -> None:
        self.db.close()

    async def aclose(self) -> None:
        self.db.close()

    def _job_dir(self, jid: str) -> Path:
        if not JID_RE.match(jid):
            raise UnknownJob(jid)
        return self.root / jid

    async def create_job(self, record: JobRecord) -> None:
        """StoreUnavailable if the record cannot be written now: this process keeps it and writes it later."""
        jid = record.job.jid
        path = self._job_dir(jid)
        if self._unwritten:
            await self._write_unwritten()
        try:
            await self._write(record, path)
        except StoreUnavailable:
            self._unwritten[jid] = record
            while len(self._unwritten) > UNWRITTEN_MAX:
                self._unwritten.popitem(last=False)
            self._targets.put(jid, JobTarget.of(record), "unwritten")
            raise

    async def _write(self, record: JobRecord, path: Path) -> None:
        jid = record.job.jid
        if record.job.fun in PROBE_FUNS:
            row = (jid, time.time(), encode(record.to_wire()))
            if path.exists() or not await self.db.run(
                    lambda c: c.execute("INSERT OR IGNORE INTO probe VALUES (?, ?, ?)", row).rowcount == 1):
                raise JobExists(jid)
            self._targets.put(jid, JobTarget.of(record), "probe")
            return
        try:
            path.mkdir()
        except FileExistsError:
            raise JobExists(jid) from None
        except OSError as exc:
            raise StoreUnavailable(f"job cache: cannot store job {jid}: {exc.strerror or exc}") from None
        try:
            (path / ".load").write_bytes(encode(record.to_wire()))
        except OSError as exc:
            shutil.rmtree(path, ignore_errors=True)
            raise StoreUnavailable(f"job cache: cannot store job {jid}: {exc.strerror or exc}") from None
        self._targets.put(jid, JobTarget.of(record), _version(os.stat(path / ".load")))

    async def flush(self) -> None:
        await self.db.tick()
        await self._write_unwritten()

    async def _write_unwritten(self) -> None:
        """Write the records kept after a failure, oldest first, until one fails again."""
        while self._unwritten:
            jid, record = next(iter(self._unwritten.items()))
            try:
                await self._write(record, self._job_dir(jid))
            except JobExists:
                pass
            except StoreError:
                return
            self._unwritten.pop(jid, None)
            log.warning("job cache: stored job %s's record after all", jid)

    async def get_job(self, jid: str) -> JobRecord:
        """UnknownJob if there is no such job (nor probe, nor record kept to be written)."""
        try:
            raw = (self._job_dir(jid) / ".load").read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            if jid in self._unwritten:
                return self._unwritten[jid]
            raw = await self._probe(jid)
            if raw is None:
                raise UnknownJob(jid) from None
        try:
            return check_record(decode(raw))
        except DecodeError:
            raise UnknownJob(jid) from None

    async def _probe(self, jid: str) -> bytes | None:
        row = await self.db.run(lambda c: c.execute("SELECT data FROM probe WHERE jid = ?", (jid,)).fetchone())
        return row[0] if row is not None else None

    async def store_return(self, jid: str, minion_id: str, data: dict, *, expected_only: bool = True) -> bool:
        """A job's record is read once per process, then its JobTarget is cached: an expected minion's
        return costs no file access before the insert.  For a minion the cached set lacks, the record's
        version is checked (one stat: a jid purged and published again is read again).  A return that comes
        in after its job was purged is kept until the next purge (jids are time-ordered)."""
        await self._expected(jid, minion_id, expected_only)
        rows = [(jid, minion_id, encode(data))]
        return (await self.db.run(lambda c: _insert_returns(c, rows), written=[(jid, minion_id)]))[0]

    async def store_returns(self, rows: Sequence[tuple[str, str, dict]]) -> list[bool | StoreError]:
        """Each return checked as store_return checks it, those that pass inserted in one transaction."""
        out, todo = await expected_rows(self._expected, rows)
        if todo:
            keys = list(todo)
            fresh = await self.db.run(lambda c: _insert_returns(c, [(*key, encode(todo[key][1])) for key in keys]),
                                      written=keys)
            for key, stored in zip(keys, fresh):
                out[todo[key][0]] = stored
        return out

    async def _expected(self, jid: str, minion_id: str, expected_only: bool) -> None:
        """Whether `minion_id` may return for `jid`: StoreError for a bad id, UnknownJob, StoreUnavailable for
        a recent job without a record (yet), NotExpected when `expected_only` and it is not expected."""
        if validate_minion_id(minion_id):
            raise StoreError(f"bad minion id {minion_id!r}")
        if self._unwritten:
            await self._write_unwritten()
        cached = self._targets.get(jid)
        target = cached[0] if cached is not None else None
        if target is None or minion_id not in target.minions:
            try:
                target = await self._target(jid, cached)
            except UnknownJob:
                if JID_RE.match(jid) and jid >= new_jid(time.time() - RECORD_GRACE_SECONDS):
                    raise StoreUnavailable(f"job cache: no record of job {jid} (yet): was it not written?") from None
                raise
        if expected_only and minion_id not in target.minions:
            raise NotExpected(jid, minion_id, target)

    async def _target(self, jid: str, cached: tuple[JobTarget, Any] | None) -> JobTarget:
        """The job's JobTarget from its record: the cached one if the record is the version it was read from."""
        try:
            version: Any = _version(os.stat(self._job_dir(jid) / ".load"))
        except (FileNotFoundError, NotADirectoryError):
            version = "probe"
        if cached is not None and cached[1] == version:
            return cached[0]
        target = JobTarget.of(await self.get_job(jid))
        self._targets.put(jid, target, version)
        return target

    async def returns(self, jid: str) -> dict[str, dict]:
        """ReturnsLost (with what is kept) for a job published before the database was re-created."""
        if not self._job_dir(jid).is_dir() and await self._probe(jid) is None:
            raise UnknownJob(jid)

        def read(c: "sqlite3.Connection") -> tuple[list, Any]:
            rows = c.execute("SELECT id, data FROM ret WHERE jid = ?", (jid,)).fetchall()
            return rows, c.execute("SELECT value FROM meta WHERE key = 'lost_before'").fetchone()
        rows, lost = await self.db.run(read)
        out: dict[str, Any] = {}
        for minion_id, data in rows:
            try:
                out[minion_id] = decode(data)
            except DecodeError:
                continue
        if lost is not None and jid < lost[0]:
            raise ReturnsLost(jid, lost[0], out)
        return out

    async def has_return(self, jid: str, minion_id: str) -> bool:
        return await self.db.run(lambda c: c.execute("SELECT 1 FROM ret WHERE jid = ? AND id = ?",
                                                     (jid, minion_id)).fetchone() is not None)

    async def jids(self, since: str = "") -> list[str]:
        """From a listing cached until the jobs directory changes: a fleet reconnecting at once asks
        for recent jobs thousands of times."""
        try:
            stamp = os.stat(self.root).st_mtime_ns
        except FileNotFoundError:
            return []
        if self._listing is None or self._listing[0] != stamp:
            self._listing = (stamp, await asyncio.to_thread(self._list))
        listing = self._listing[1]
        return listing[bisect.bisect_left(listing, since):]

    def _list(self) -> list[str]:
        try:
            return sorted(n for n in os.listdir(self.root) if JID_RE.match(n))
        except FileNotFoundError:
            return []

    async def purge(self, before: str) -> int:
        """The job directories first (no lock taken), then their returns PURGE_BATCH rows at a time."""
        def remove() -> int:
            doomed = [n for n in self._list() if n < before]
            for name in doomed:
                shutil.rmtree(self.root / name, ignore_errors=True)
            return len(doomed)
        removed = await asyncio.to_thread(remove)

        def delete(c: "sqlite3.Connection") -> int:
            return c.execute("DELETE FROM ret WHERE (jid, id) IN (SELECT jid, id FROM ret WHERE jid < ? LIMIT ?)",
                             (before, PURGE_BATCH)).rowcount
        while await self.db.run(delete, inline=False) >= PURGE_BATCH:
            await asyncio.sleep(0)
        await self.db.run(lambda c: c.execute("DELETE FROM probe WHERE jid < ?", (before,)), inline=False)
        return removed

    async def list_jobs(self, query: JobQuery) -> list[JobRecord]:
        """Every record read, newest first, until `query.limit` matched (probes are rows, never listed)."""
        out: list[JobRecord] = []
        for jid in reversed(await self.jids()):
            try:
                record = await self.get_job(jid)
            except StoreError:  # purged or half-written meanwhile, or unreadable: not listed
                continue
            if query.matches(record):
                out.append(record)
                if len(out) == query.limit:
                    break
        return out

    async def expire_probes(self, older_than: float) -> int:
        """Remove the probes sent before `older_than` (a time) and their answers; returns how many."""
        def delete(c: "sqlite3.Connection") -> int:
            c.execute("DELETE FROM ret WHERE jid IN (SELECT jid FROM probe WHERE ts < ?)", (older_than,))
            return c.execute("DELETE FROM probe WHERE ts < ?", (older_than,)).rowcount
        return await self.db.run(delete, inline=False)

    async def usage(self) -> int:
        """Bytes the job cache takes: JOB_DIR_BYTES a job and the database's pages in use (its free pages are
        reused, and its WAL is bounded by SQLite's checkpoints)."""
        def used(c: "sqlite3.Connection") -> int:
            pages = c.execute("PRAGMA page_count").fetchone()[0] - c.execute("PRAGMA freelist_count").fetchone()[0]
            return pages * c.execute("PRAGMA page_size").fetchone()[0]
        return await asyncio.to_thread(self._count) * JOB_DIR_BYTES + await self.db.run(used, inline=False)

    def _count(self) -> int:
        """How many jobs are kept (counted, not listed: a day's jobs can be millions of names)."""
        try:
            with os.scandir(self.root) as entries:
                return sum(1 for e in entries if JID_RE.match(e.name))
        except FileNotFoundError:
            return 0

    async def trim(self, max_bytes: int) -> Trimmed | None:
        """Remove the oldest jobs until the cache is TRIM_TO of `max_bytes`, if it is over `max_bytes`."""
        used = await self.usage()
        if used <= max_bytes:
            return None
        to_free = used - int(max_bytes * TRIM_TO)
        listing = await asyncio.to_thread(self._list)
        freed, cut = 0, 0
        while cut < len(listing) and freed < to_free:
            chunk = listing[cut:cut + 256]
            sizes = dict(await self.db.run(lambda c: c.execute(
                "SELECT jid, sum(length(data)) FROM ret WHERE jid >= ? AND jid <= ? GROUP BY jid",
                (chunk[0], chunk[-1])).fetchall(), inline=False))
            for jid in chunk:
                freed += JOB_DIR_BYTES + (sizes.get(jid) or 0)
                cut += 1
                if freed >= to_free:
                    break
        first_kept = listing[cut] if cut < len(listing) else new_jid(time.time())
        removed = await self.purge(first_kept)
        return Trimmed(used, removed, first_kept)

    async def check(self) -> list[str]:
        return await self.db.check()


def corrupt(path: Path) -> str:
    """Why the returns database at `path` cannot be used ("" if it can): not a database, or its tables unreadable."""
    import sqlite3
    try:
        conn = sqlite3.connect(path, timeout=5.0)
    except sqlite3.Error as exc:
        return "" if _code_of(exc) in (5, 14) else str(exc)
    try:
        conn.execute("SELECT name FROM sqlite_master").fetchall()
        conn.execute("SELECT jid, id, length(data) FROM ret LIMIT 1").fetchall()
        return ""
    except sqlite3.OperationalError as exc:  # a missing table (a new file), a lock: not corruption
        return "" if _code_of(exc) in (1, 5, 6, 14) else str(exc)
    except sqlite3.Error as exc:
        return str(exc)
    finally:
        conn.close()


def _code_of(exc: Exception) -> int:
    return (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF


def move_aside(path: Path) -> Path:
    """Rename a corrupt database with its -wal and -shm to `<name>.corrupt-<jid>`; returns the new path."""
    aside = path.with_name(f"{path.name}.corrupt-{new_jid(time.time())}")
    for suffix in ("-wal", "-shm", ""):
        try:
            os.rename(f"{path}{suffix}", f"{aside}{suffix}")
        except FileNotFoundError:
            pass
    return aside


def _insert_returns(c: "sqlite3.Connection", rows: list[tuple[str, str, bytes]]) -> list[bool]:
    """Insert returns in one transaction (one commit for all); which were new.  The write lock is taken first
    (BEGIN IMMEDIATE), so a busy database fails before anything is written and the whole call can be retried.
    One return is one statement (a transaction of its own: cheaper than BEGIN and COMMIT around it)."""
    if len(rows) == 1:
        return [c.execute("INSERT OR IGNORE INTO ret VALUES (?, ?, ?)", rows[0]).rowcount == 1]
    c.execute("BEGIN IMMEDIATE")
    try:
        fresh = [c.execute("INSERT OR IGNORE INTO ret VALUES (?, ?, ?)", row).rowcount == 1 for row in rows]
        c.execute("COMMIT")
    except BaseException:
        if c.in_transaction:
            c.execute("ROLLBACK")
        raise
    return fresh


def _version(st: os.stat_result) -> tuple[int, int, int]:
    return st.st_ino, st.st_mtime_ns, st.st_size


class SqliteReplayGuard:
    """Nonces of sealed commands already seen, shared by every worker through the same database."""

    def __init__(self, db: Db) -> None:
        self.db = db

    async def first_use(self, nonce: bytes, now: float) -> bool:
        return await self.db.run(lambda c: c.execute("INSERT OR IGNORE INTO seen VALUES (?, ?)",
                                                     (nonce, now)).rowcount == 1)

    async def forget(self, older_than: float) -> None:
        await self.db.run(lambda c: c.execute("DELETE FROM seen WHERE ts < ?", (older_than,)))

    def close(self) -> None:
        self.db.close()
