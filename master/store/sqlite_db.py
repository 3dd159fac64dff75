"""The returns database of the local job store, as one process uses it: two connections (one that
never waits, for the event loop; one that waits for the lock, used from a thread), and what keeps a
fault in the database's files from killing the process or losing returns silently.

- Before every operation the `-shm` file must be writable (one access(2), ~1-2 µs).  In WAL mode
  SQLite maps it into memory and writes to it even to read; a write to the mapping of a file made
  immutable (or on a file system remounted read-only) is a SIGBUS that kills the process.  So while
  it cannot be written, every operation is refused with StoreUnavailable, and the connections are
  left alone (closing one writes to the mapping too).
- A connection that failed (read-only, I/O error, corrupt) is closed and opened again at a later
  request, at most every RETRY_SECONDS: one opened while the files were read-only stays read-only.
  A full disk keeps the connections: the next write may fit.
- At most once per CHECK_SECONDS (and at once when the -shm file vanished) the path's inode is compared
  with the one the connections use: a database deleted or replaced under the master is logged,
  opened anew (created if missing), the time of the gap recorded in it (`meta.lost_before`), and the
  returns this process wrote to the old file since the previous check are copied over.  Closing the
  old connections is safe: SQLite neither checkpoints nor deletes the WAL of a file that has moved.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence, TypeVar

from rx.master.store.errors import StoreError, StoreUnavailable
from rx.transport.ids import new_jid

if TYPE_CHECKING:
    import sqlite3

log = logging.getLogger("rx.master.store")

T = TypeVar("T")
LOCK_WAIT = 30.0
CHECK_SECONDS = 1.0
RETRY_SECONDS = 0.5
CACHE_KIB = 512
"""Page cache per connection (SQLite's default is 2 MiB): returns are appended, so few pages are read again,
and a large return's pages are not worth keeping.  A worker's RSS grows while it fills (the first minutes of
a steady load), then stays flat."""
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS ret (jid TEXT NOT NULL, id TEXT NOT NULL, data BLOB NOT NULL, "
    "PRIMARY KEY (jid, id)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS seen (nonce BLOB PRIMARY KEY, ts REAL NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS probe (jid TEXT PRIMARY KEY, ts REAL NOT NULL, data BLOB NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
)
_BUSY = {5, 6}
"""SQLITE_BUSY, SQLITE_LOCKED: another writer holds the lock (wait for it in a thread)."""
_REOPEN = {8, 10, 11, 14, 26}
"""SQLITE_READONLY, IOERR, CORRUPT, CANTOPEN, NOTADB: this connection is not to be trusted again."""
_FULL = 13
_CORRUPT = {11, 26}
"""SQLITE_CORRUPT, SQLITE_NOTADB."""


def _code(exc: Exception) -> int:
    return (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF


class Db:
    """This process's connections to one returns database (the job store and the replay guard share it).
    sqlite3 loads on first use; a forked child opens its own."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.shm = self.path.with_name(self.path.name + "-shm")
        self._fast: "sqlite3.Connection | None" = None
        self._slow: "sqlite3.Connection | None" = None
        self._retired: list["sqlite3.Connection"] = []
        self._pid = 0
        self._ident: tuple[int, int] | None = None
        self._checked = 0.0
        self._written: list[tuple[str, str]] = []
        self._in_thread = 0
        self._retry_at = 0.0
        self._last_error = ""
        self._lock: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None
        self.gaps: list[str] = []
        """What this process noticed lost (a deleted or replaced database), for the owner to report."""

    async def run(self, op: Callable[["sqlite3.Connection"], T], *, inline: bool = True,
                  written: Sequence[tuple[str, str]] = ()) -> T:
        """`op(connection)` inline if the database is free (and `inline`), else in a thread that waits for
        the lock.  `written`: the (jid, id) of the returns `op` stores, copied over if the file turns out
        to have been replaced.  StoreUnavailable while the files cannot be used."""
        import sqlite3
        if self._pid != os.getpid():  # a forked child: its parent's connections are not its own to close
            self._fast = self._slow = None
            self._retired, self._written, self._pid = [], [], os.getpid()
        if self._fast is not None:
            if not os.access(self.shm, os.W_OK):
                await self._unwritable()
            elif time.monotonic() - self._checked >= CHECK_SECONDS:
                await self.check()
            elif self._retired:
                self._close_retired()
        if self._fast is None:
            await self._connect()
        fast, slow = self._fast, self._slow
        assert fast is not None and slow is not None
        try:
            if inline:
                try:
                    result = op(fast)
                except sqlite3.OperationalError as exc:
                    if _code(exc) not in _BUSY:
                        raise
                    result = await self._in_thread_run(op, slow)
            else:
                result = await self._in_thread_run(op, slow)
        except sqlite3.Error as exc:
            raise self._failed(exc, fast) from None
        if written:
            self._written.extend(written)
        return result

    async def _in_thread_run(self, op: Callable[["sqlite3.Connection"], T], conn: "sqlite3.Connection") -> T:
        self._in_thread += 1
        try:
            return await asyncio.to_thread(op, conn)
        finally:
            self._in_thread -= 1

    async def tick(self) -> None:
        """The periodic check, for an idle process: a return written into a database deleted since is copied
        over within CHECK_SECONDS, not at the next request (which may never come)."""
        if self._fast is not None and self._pid == os.getpid() and time.monotonic() - self._checked >= CHECK_SECONDS:
            await self.check()

    async def check(self) -> list[str]:
        """Notice a database file deleted or replaced under this process (re-open it, record the gap);
        returns the gaps noticed since the last call, once."""
        if self._fast is not None and self._pid == os.getpid():
            self._checked = time.monotonic()
            if self._moved():
                await self._replace()
            else:
                self._written.clear()
        gaps, self.gaps = self.gaps, []
        return gaps

    def _moved(self) -> bool:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return True
        return (st.st_dev, st.st_ino) != self._ident

    async def _unwritable(self) -> None:
        """The -shm file cannot be written: deleted with the database (open a new one), or read-only."""
        if self._moved() or not self.shm.exists():
            await self._replace()
            return
        raise self._unavailable(f"{self.shm.name} is not writable (an immutable file, a read-only file system?)")

    async def _replace(self) -> None:
        """Move to a new database file: the old connections' recent returns are copied over, the gap is
        logged and recorded (returns of jobs before now may be lost)."""
        import sqlite3
        old = self._fast
        rows: list[tuple] = []
        if old is not None:
            for jid, minion_id in self._written:
                try:
                    row = old.execute("SELECT jid, id, data FROM ret WHERE jid = ? AND id = ?", (jid, minion_id)).fetchone()
                except sqlite3.Error:
                    break
                if row is not None:
                    rows.append(row)
        self._retire()
        self._written = []
        lost_before = new_jid(time.time())
        what = (f"job cache: {self.path} was deleted or replaced while the master was using it: returns stored "
                f"in it before {lost_before} are lost (rx-run jobs.lookup_jid says so for those jobs); "
                f"continuing in a new database")
        log.error("%s", what)
        self.gaps = [*self.gaps[-7:], what]
        await self._connect()

        def carry_over(c: "sqlite3.Connection") -> None:
            c.execute("INSERT OR IGNORE INTO meta VALUES ('lost_before', ?)", (lost_before,))
            c.executemany("INSERT OR IGNORE INTO ret VALUES (?, ?, ?)", rows)
        await self.run(carry_over, inline=False)
        if rows:
            log.warning("job cache: copied %d return(s) written since the last check into the new database", len(rows))

    def _retire(self) -> None:
        """Stop using the connections; they are closed once no thread uses them and the files are writable."""
        self._retired += [c for c in (self._fast, self._slow) if c is not None]
        self._fast = self._slow = None

    def _failed(self, exc: "sqlite3.Error", conn: "sqlite3.Connection") -> StoreError:
        code = _code(exc)
        if code in _REOPEN and conn is self._fast:
            self._retire()
        if code in _CORRUPT:
            return self._unavailable(f"{exc}: the database is corrupt; restart the master: it moves the file aside "
                                     "and starts a new one (see the README's troubleshooting)")
        if code in _REOPEN or code == _FULL:
            return self._unavailable(str(exc))
        return StoreError(f"job store {self.path}: {exc}")

    def _unavailable(self, why: str) -> StoreUnavailable:
        self._last_error = why
        return StoreUnavailable(f"job store {self.path}: {why}")

    def _get_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock[0] is not loop:
            self._lock = (loop, asyncio.Lock())
        return self._lock[1]

    async def _connect(self) -> None:
        """Open the connections (at most every RETRY_SECONDS after a failure)."""
        import sqlite3
        async with self._get_lock():
            if self._fast is not None:
                return
            if time.monotonic() < self._retry_at:
                raise StoreUnavailable(f"job store {self.path}: {self._last_error}")
            try:
                self._fast, self._slow, self._ident = await asyncio.to_thread(self._open)
            except (sqlite3.Error, OSError) as exc:
                self._retry_at = time.monotonic() + RETRY_SECONDS
                hint = ("; the database is corrupt: restart the master (it moves the file aside)"
                        if _code(exc) in _CORRUPT else "")
                raise self._unavailable(f"cannot open it: {exc}{hint}") from None
            self._retry_at, self._checked = 0.0, time.monotonic()
            self._close_retired()

    def _close_retired(self) -> None:
        if self._in_thread or not self._retired:
            return
        for conn in self._retired:
            conn.close()
        self._retired = []

    def _open(self) -> tuple["sqlite3.Connection", "sqlite3.Connection", tuple[int, int]]:
        """Both connections: the waiting one sets the database up (WAL, tables), then the one that never
        waits joins it.  Files that cannot be written are refused before SQLite opens them read-only."""
        import sqlite3
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        for p in (self.path.parent, self.path, self.shm, self.path.with_name(self.path.name + "-wal")):
            if p.exists() and not os.access(p, os.W_OK):
                raise OSError(f"{p} is not writable")
        if not self.path.exists():
            # private before SQLite opens it (and its -wal).  Only here, before this process holds any
            # connection to the file: closing another descriptor of it would drop SQLite's POSIX locks.
            try:
                os.close(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
            except FileExistsError:
                pass
        slow = sqlite3.connect(self.path, timeout=LOCK_WAIT, isolation_level=None, check_same_thread=False)
        try:
            _setup(slow)
            fast = sqlite3.connect(self.path, timeout=0.0, isolation_level=None, check_same_thread=False)
            for conn in (slow, fast):
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA mmap_size=0")
                conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            st = os.stat(self.path)
        except BaseException:
            slow.close()
            raise
        return fast, slow, (st.st_dev, st.st_ino)

    def close(self) -> None:
        """Close this process's connections (unless the files cannot be written: that would fault)."""
        if self._pid == os.getpid() and (os.access(self.shm, os.W_OK) or not self.shm.exists()):
            self._retire()
            self._close_retired()
        self._fast = self._slow = None


def _setup(conn: "sqlite3.Connection") -> None:
    """WAL and the tables.  Switching a fresh database to WAL upgrades a read lock, which SQLite refuses at
    once (no busy wait) while another process writes: retried until LOCK_WAIT."""
    import sqlite3
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            for statement in SCHEMA:
                conn.execute(statement)
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
