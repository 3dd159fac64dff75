"""The local job store: one directory per jid holding the job record, and the returns in one
SQLite table (WAL) keyed by (jid, id); the replay guard's nonces in a second table.

`INSERT OR IGNORE` on (jid, id) makes storing a return atomic across MWorker processes: a
second return for the same pair (a replay or a duplicate) is refused without touching the
first.  Writes run inline with no busy wait (~15 µs); only when another writer holds the lock
(a retention purge) does the write move to a thread that waits, so the event loop never stalls.
"""

from __future__ import annotations

import asyncio
import bisect
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from rx.master.store.base import (ExpectedCache, JobExists, JobRecord, JobTarget, NotExpected, StoreError, UnknownJob,
                                  check_record)
from rx.transport.codec import DecodeError, decode, encode
from rx.transport.ids import JID_RE, validate_minion_id

if TYPE_CHECKING:
    import sqlite3

T = TypeVar("T")
DB_NAME = ".returns.sqlite"
LOCK_WAIT = 30.0


class Db:
    """This process's two connections to the returns database: one that never waits (the event
    loop's), one that waits for the lock (used from a thread).  sqlite3 loads on first use.
    One per database file per process (the job store and the replay guard share it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fast: "sqlite3.Connection | None" = None
        self._slow: "sqlite3.Connection | None" = None
        self._pid = 0

    def _open(self) -> None:
        """Both connections for this process: the waiting one sets the database up (WAL, tables), then
        the one that never waits joins it."""
        import sqlite3
        if not self.path.exists():
            # private before SQLite opens it (and its -wal).  Only here, before this process holds any
            # connection to the file: closing another descriptor of it would drop SQLite's POSIX locks.
            try:
                os.close(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
            except FileExistsError:
                pass
        slow = sqlite3.connect(self.path, timeout=LOCK_WAIT, isolation_level=None, check_same_thread=False)
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            # switching a fresh database to WAL upgrades a read lock, which SQLite refuses at once (no busy
            # wait) while another process writes: retry until the deadline
            try:
                slow.execute("PRAGMA journal_mode=WAL")
                slow.execute("CREATE TABLE IF NOT EXISTS ret (jid TEXT NOT NULL, id TEXT NOT NULL, "
                             "data BLOB NOT NULL, PRIMARY KEY (jid, id)) WITHOUT ROWID")
                slow.execute("CREATE TABLE IF NOT EXISTS seen (nonce BLOB PRIMARY KEY, ts REAL NOT NULL) "
                             "WITHOUT ROWID")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    slow.close()
                    raise
                time.sleep(0.01)
        slow.execute("PRAGMA synchronous=NORMAL")
        fast = sqlite3.connect(self.path, timeout=0.0, isolation_level=None, check_same_thread=False)
        fast.execute("PRAGMA synchronous=NORMAL")
        self._slow, self._fast = slow, fast

    def _conns(self) -> tuple["sqlite3.Connection", "sqlite3.Connection"]:
        assert self._fast is not None and self._slow is not None
        return self._fast, self._slow

    async def run(self, op: Callable[["sqlite3.Connection"], T], *, inline: bool = True) -> T:
        """`op(connection)` inline if the database is free (and `inline`), else in a thread that waits
        for the lock."""
        import sqlite3
        if self._pid != os.getpid():  # a forked child opens its own
            self._fast = self._slow = None
            self._pid = os.getpid()
        if self._fast is None:
            try:
                await asyncio.to_thread(self._open)
            except sqlite3.Error as exc:
                raise StoreError(f"job store {self.path}: {exc}") from None
        fast, slow = self._conns()
        if inline:
            try:
                return op(fast)
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise StoreError(f"job store {self.path}: {exc}") from None
            except sqlite3.Error as exc:
                raise StoreError(f"job store {self.path}: {exc}") from None
        try:
            return await asyncio.to_thread(op, slow)
        except sqlite3.Error as exc:
            raise StoreError(f"job store {self.path}: {exc}") from None

    def close(self) -> None:
        if self._pid == os.getpid():
            for conn in (self._fast, self._slow):
                if conn is not None:
                    conn.close()
        self._fast = self._slow = None


class SqliteJobStore:
    def __init__(self, jobs_dir: str | Path, db: Db | None = None) -> None:
        self.root = Path(jobs_dir)
        self.db = db or Db(self.root / DB_NAME)
        self._listing: tuple[int, list[str]] | None = None
        self._targets = ExpectedCache()

    async def prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)

    def close(self) -> None:
        self.db.close()

    def _job_dir(self, jid: str) -> Path:
        if not JID_RE.match(jid):
            raise UnknownJob(jid)
        return self.root / jid

    async def create_job(self, record: JobRecord) -> None:
        path = self._job_dir(record.job.jid)
        try:
            path.mkdir()
        except FileExistsError:
            raise JobExists(record.job.jid) from None
        (path / ".load").write_bytes(encode(record.to_wire()))
        self._targets.put(record.job.jid, JobTarget.of(record), _version(os.stat(path / ".load")))

    async def get_job(self, jid: str) -> JobRecord:
        try:
            raw = (self._job_dir(jid) / ".load").read_bytes()
            return check_record(decode(raw))
        except (FileNotFoundError, NotADirectoryError, DecodeError):
            raise UnknownJob(jid) from None

    async def store_return(self, jid: str, minion_id: str, data: dict, *, expected_only: bool = True) -> bool:
        """A job's record is read once per process, then its JobTarget is cached: an expected minion's
        return costs no file access before the insert.  For a minion the cached set lacks, the record's
        version is checked (one stat: a jid purged and published again is read again).  A return that comes
        in after its job was purged is kept until the next purge (jids are time-ordered)."""
        if validate_minion_id(minion_id):
            raise StoreError(f"bad minion id {minion_id!r}")
        cached = self._targets.get(jid)
        target = cached[0] if cached is not None else None
        if target is None or minion_id not in target.minions:
            target = await self._target(jid, cached)
        if expected_only and minion_id not in target.minions:
            raise NotExpected(jid, minion_id, target)
        row = (jid, minion_id, encode(data))
        return await self.db.run(lambda c: c.execute("INSERT OR IGNORE INTO ret VALUES (?, ?, ?)", row).rowcount == 1)

    async def _target(self, jid: str, cached: tuple[JobTarget, Any] | None) -> JobTarget:
        """The job's JobTarget from its record: the cached one if the record is the version it was read from."""
        try:
            version = _version(os.stat(self._job_dir(jid) / ".load"))
        except (FileNotFoundError, NotADirectoryError):
            raise UnknownJob(jid) from None
        if cached is not None and cached[1] == version:
            return cached[0]
        target = JobTarget.of(await self.get_job(jid))
        self._targets.put(jid, target, version)
        return target

    async def returns(self, jid: str) -> dict[str, dict]:
        if not self._job_dir(jid).is_dir():
            raise UnknownJob(jid)
        rows = await self.db.run(lambda c: c.execute("SELECT id, data FROM ret WHERE jid = ?", (jid,)).fetchall())
        out: dict[str, Any] = {}
        for minion_id, data in rows:
            try:
                out[minion_id] = decode(data)
            except DecodeError:
                continue
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
        def remove() -> int:
            doomed = [n for n in self._list() if n < before]
            for name in doomed:
                shutil.rmtree(self.root / name, ignore_errors=True)
            return len(doomed)
        removed = await asyncio.to_thread(remove)
        await self.db.run(lambda c: c.execute("DELETE FROM ret WHERE jid < ?", (before,)), inline=False)
        return removed


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
