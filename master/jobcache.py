"""The master's job cache: one directory per jid (the job), and the returns in one
SQLite table (WAL) keyed by (jid, id).

`INSERT OR IGNORE` on that key makes storing a return atomic across MWorker
processes: a second return for the same (jid, id) — a replay or a duplicate —
is refused without touching the first.  One row is ~15 µs where one file per
return cost 150-250 µs on the hot path.
"""

from __future__ import annotations

import bisect
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rx.transport.ids import JID_RE, new_jid, validate_minion_id
from rx.transport.codec import DecodeError, decode, encode


if TYPE_CHECKING:
    import sqlite3


class DatabaseError(Exception):
    """The returns database cannot be read (wraps sqlite3.Error, so callers need not import sqlite3)."""


class JobExists(Exception):
    pass


class UnknownJob(Exception):
    pass


class JobCache:
    def __init__(self, jobs_dir: str | Path) -> None:
        self.root = Path(jobs_dir)
        self._conn: "sqlite3.Connection | None" = None
        self._conn_pid = 0
        self._listing: tuple[int, list[str]] | None = None

    def close(self) -> None:
        """Close this process's database connection (it holds file descriptors until closed)."""
        if self._conn is not None and self._conn_pid == os.getpid():
            self._conn.close()
        self._conn = None

    def _db(self) -> "sqlite3.Connection":
        """This process's connection (a forked child opens its own); sqlite3 loads on first use."""
        if self._conn is None or self._conn_pid != os.getpid():
            import sqlite3
            path = self.root / ".returns.sqlite"
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)  # private before SQLite opens it (and its -wal)
            os.close(fd)
            conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("CREATE TABLE IF NOT EXISTS ret (jid TEXT NOT NULL, id TEXT NOT NULL, data BLOB NOT NULL, "
                         "PRIMARY KEY (jid, id)) WITHOUT ROWID")
            conn.execute("CREATE TABLE IF NOT EXISTS seen (nonce BLOB PRIMARY KEY, ts REAL NOT NULL) WITHOUT ROWID")
            self._conn, self._conn_pid = conn, os.getpid()
        return self._conn

    def ensure(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)

    def _job_dir(self, jid: str) -> Path:
        if not JID_RE.match(jid):
            raise UnknownJob(jid)
        return self.root / jid

    def create(self, jid: str, load: dict, minions: list[str], no_grains: list[str] | None = None) -> None:
        path = self._job_dir(jid)
        try:
            path.mkdir()
        except FileExistsError:
            raise JobExists(jid) from None
        (path / ".load").write_bytes(encode({"load": load, "minions": minions, "no_grains": no_grains or []}))

    def exists(self, jid: str) -> bool:
        return self._job_dir(jid).is_dir()

    def store_return(self, jid: str, minion_id: str, ret: dict) -> bool:
        """Store a minion's return; False if one is already stored for (jid, id)."""
        if validate_minion_id(minion_id):
            raise ValueError("bad minion id")
        if not self._job_dir(jid).is_dir():
            raise UnknownJob(jid)
        cur = self._db().execute("INSERT OR IGNORE INTO ret VALUES (?, ?, ?)", (jid, minion_id, encode(ret)))
        return cur.rowcount == 1

    def load(self, jid: str) -> dict:
        try:
            return decode((self._job_dir(jid) / ".load").read_bytes())
        except (FileNotFoundError, DecodeError):
            raise UnknownJob(jid) from None

    def first_use(self, nonce: bytes, now: float) -> bool:
        """True the first time a sealed message's nonce is presented, False for a replay (any worker)."""
        cur = self._db().execute("INSERT OR IGNORE INTO seen VALUES (?, ?)", (nonce, now))
        return cur.rowcount == 1

    def forget_nonces(self, older_than: float) -> None:
        """Drop nonces older than the freshness window: a message that old is refused as stale anyway."""
        self._db().execute("DELETE FROM seen WHERE ts < ?", (older_than,))

    def returns(self, jid: str) -> dict[str, Any]:
        if not self._job_dir(jid).is_dir():
            raise UnknownJob(jid)
        import sqlite3
        out = {}
        try:
            rows = self._db().execute("SELECT id, data FROM ret WHERE jid = ?", (jid,)).fetchall()
        except sqlite3.Error as exc:
            raise DatabaseError(str(exc)) from None
        for minion_id, data in rows:
            try:
                out[minion_id] = decode(data)
            except DecodeError:
                continue
        return out

    def has_return(self, jid: str, minion_id: str) -> bool:
        row = self._db().execute("SELECT 1 FROM ret WHERE jid = ? AND id = ?", (jid, minion_id)).fetchone()
        return row is not None

    def jids_since(self, first: str) -> list[str]:
        """Jobs with jid >= `first` (jids are time-ordered), from a listing cached until the jobs directory
        changes: a fleet reconnecting at once asks this thousands of times."""
        try:
            stamp = os.stat(self.root).st_mtime_ns
        except FileNotFoundError:
            return []
        if self._listing is None or self._listing[0] != stamp:
            self._listing = (stamp, self.jids())
        listing = self._listing[1]
        return listing[bisect.bisect_left(listing, first):]

    def jids(self) -> list[str]:
        """Every job in the cache, oldest first."""
        try:
            return sorted(n for n in os.listdir(self.root) if JID_RE.match(n))
        except FileNotFoundError:
            return []

    def purge(self, keep_hours: float, now: float | None = None) -> int:
        """Remove jobs older than `keep_hours` (by jid time); returns how many."""
        if keep_hours <= 0:
            return 0
        cutoff = new_jid((time.time() if now is None else now) - keep_hours * 3600)
        removed = 0
        for name in self.jids():
            if name < cutoff:
                shutil.rmtree(self.root / name, ignore_errors=True)
                removed += 1
        self._db().execute("DELETE FROM ret WHERE jid < ?", (cutoff,))
        return removed
