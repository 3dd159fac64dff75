"""The job store on a PostgreSQL server (`job_store_backend: postgres`, `postgres_dsn`): jobs in `rx_jobs`
(the record, and the columns listing filters on), returns in `rx_returns` keyed by (jid, id) with a
foreign key to their job (purging a job removes its returns).  Every process (each MWorker, the
maintenance process, rx-run) has its own pool (`pg_db.PgDb`).

The same guarantees as the SQLite store: a return is stored once per (jid, id) (`ON CONFLICT DO NOTHING`,
atomic across workers and masters sharing the database); a server that cannot be used answers
StoreUnavailable, so the minion keeps the return in its spool and sends it again; a job record that
could not be written when its job was published is kept by that process and written at its next
operation (meanwhile a return for the job is answered "retry").

Not here: the size bound `job_cache_max_mb` (a database is sized by its administrator; `keep_jobs_hours`
still purges) and the deleted-file checks (`check` has nothing to notice).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Sequence, TypeVar

from rx.master.store.base import (PROBE_FUNS, ExpectedCache, JobExists, JobQuery, JobRecord, JobTarget,
                                  NotExpected, StoreError, Trimmed, UnknownJob, check_record, expected_rows)
from rx.master.store.errors import StoreUnavailable
from rx.master.store.pg_db import PgDb
from rx.transport.codec import DecodeError, decode, encode
from rx.transport.ids import JID_RE, new_jid, validate_minion_id

if TYPE_CHECKING:
    import psycopg

__all__ = ["PgJobStore", "SCHEMA"]

log = logging.getLogger("rx.master.store")
T = TypeVar("T")

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS rx_jobs (
        jid text COLLATE "C" PRIMARY KEY, fun text NOT NULL, tgt text NOT NULL, tgt_type text NOT NULL,
        "user" text NOT NULL, started double precision NOT NULL, minions integer NOT NULL,
        probe boolean NOT NULL, created double precision NOT NULL, record bytea NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS rx_returns (
        jid text COLLATE "C" NOT NULL REFERENCES rx_jobs (jid) ON DELETE CASCADE, id text COLLATE "C" NOT NULL,
        retcode integer, success boolean, stored double precision NOT NULL, data bytea NOT NULL,
        PRIMARY KEY (jid, id))""",
    "CREATE INDEX IF NOT EXISTS rx_jobs_probes ON rx_jobs (created) WHERE probe",
    "CREATE INDEX IF NOT EXISTS rx_jobs_started ON rx_jobs (started) WHERE NOT probe",
)
SCHEMA_LOCK = 0x72785F6A6F6273  # pg_advisory_xact_lock key: one process creates the tables at a time
RECORD_GRACE_SECONDS = 120.0
UNWRITTEN_MAX = 256
PURGE_BATCH_JOBS = 64
"""A purge deletes this many jobs (and, by cascade, their returns) a transaction."""
LIST_BATCH = 500


async def _create(c: "psycopg.AsyncConnection") -> None:
    await c.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
    for statement in SCHEMA:
        await c.execute(statement)


class PgJobStore:
    def __init__(self, dsn: str, pool_size: int = 4, db: PgDb | None = None) -> None:
        self.db = db or PgDb(dsn, pool_size)
        self._targets = ExpectedCache()
        self._unwritten: OrderedDict[str, JobRecord] = OrderedDict()
        self._ready = False
        """The tables are known to exist (checked once per process)."""

    async def prepare(self) -> None:
        """Create the tables (on a connection of its own: the master does this once, in a loop of its own).
        A server that cannot be reached now is logged, not fatal: every process creates the tables at its
        first operation too, and returns wait in the minions' spools meanwhile."""
        import psycopg
        try:
            conn = await psycopg.AsyncConnection.connect(self.db.dsn, connect_timeout=5)
        except psycopg.Error as exc:
            log.error("job store: cannot reach PostgreSQL (%s) at start: %s; the master starts anyway and "
                      "creates its tables when the server answers", self.db.where, str(exc).strip().splitlines()[0])
            return
        try:
            async with conn.transaction():
                await _create(conn)
        except psycopg.Error as exc:
            raise StoreError(f"job store (PostgreSQL {self.db.where}): cannot create its tables: {exc}") from None
        finally:
            await conn.close()
        self._ready = True

    async def _run(self, op: Callable[["psycopg.AsyncConnection"], Awaitable[T]]) -> T:
        if not self._ready:
            await self.db.run(_create, atomic=True)
            self._ready = True
        return await self.db.run(op)

    def close(self) -> None:
        self.db.close()

    async def aclose(self) -> None:
        """Close this process's pool from inside its event loop (rx-run, tests)."""
        await self.db.aclose()

    async def create_job(self, record: JobRecord) -> None:
        jid = record.job.jid
        if not JID_RE.match(jid):
            raise UnknownJob(jid)
        if self._unwritten:
            await self._write_unwritten()
        try:
            await self._write(record)
        except StoreUnavailable:
            self._unwritten[jid] = record
            while len(self._unwritten) > UNWRITTEN_MAX:
                self._unwritten.popitem(last=False)
            self._targets.put(jid, JobTarget.of(record), "unwritten")
            raise

    async def _write(self, record: JobRecord) -> None:
        job = record.job
        tgt = ",".join(map(str, job.tgt)) if isinstance(job.tgt, list) else str(job.tgt)
        fun = ",".join(job.fun) if isinstance(job.fun, list) else job.fun
        now = time.time()
        row = (job.jid, fun, tgt, job.tgt_type, job.user, job.ts, len(record.minions), job.fun in PROBE_FUNS, now,
               encode(record.to_wire()))

        async def insert(c: "psycopg.AsyncConnection") -> int:
            cur = await c.execute("INSERT INTO rx_jobs VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                                  "ON CONFLICT (jid) DO NOTHING", row)
            return cur.rowcount
        if await self._run(insert) != 1:
            raise JobExists(job.jid)
        self._targets.put(job.jid, JobTarget.of(record), now)

    async def flush(self) -> None:
        await self._write_unwritten()

    async def _write_unwritten(self) -> None:
        while self._unwritten:
            jid, record = next(iter(self._unwritten.items()))
            try:
                await self._write(record)
            except JobExists:
                pass
            except StoreError:
                return
            self._unwritten.pop(jid, None)

    async def _record(self, jid: str) -> tuple[JobRecord, float]:
        if not JID_RE.match(jid):
            raise UnknownJob(jid)

        async def read(c: "psycopg.AsyncConnection") -> Any:
            return await (await c.execute("SELECT record, created FROM rx_jobs WHERE jid = %s", (jid,))).fetchone()
        row = await self._run(read)
        if row is None:
            if jid in self._unwritten:
                return self._unwritten[jid], -1.0
            raise UnknownJob(jid)
        try:
            return check_record(decode(bytes(row[0]))), row[1]
        except DecodeError:
            raise UnknownJob(jid) from None

    async def get_job(self, jid: str) -> JobRecord:
        return (await self._record(jid))[0]

    async def store_return(self, jid: str, minion_id: str, data: dict, *, expected_only: bool = True) -> bool:
        """The job's expected set is cached per process: an expected minion's return is one INSERT."""
        await self._expected(jid, minion_id, expected_only)
        row = _row(jid, minion_id, data)

        async def insert(c: "psycopg.AsyncConnection") -> int:
            cur = await c.execute("INSERT INTO rx_returns VALUES (%s, %s, %s, %s, %s, %s) "
                                  "ON CONFLICT (jid, id) DO NOTHING", row)
            return cur.rowcount
        try:
            return await self._run(insert) == 1
        except StoreError as exc:
            if "rx_returns_jid_fkey" in str(exc):  # purged (or never written) since it was cached
                raise self._no_record(jid) from None
            raise

    async def store_returns(self, rows: Sequence[tuple[str, str, dict]]) -> list[bool | StoreError]:
        """Each return checked as store_return checks it, those that pass inserted by one statement (one round
        trip); if one's job was purged meanwhile, they are stored one by one instead."""
        out, todo = await expected_rows(self._expected, rows)
        if not todo:
            return out
        values = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(todo))
        flat = [v for (jid, minion_id), (_i, data) in todo.items() for v in _row(jid, minion_id, data)]

        async def insert(c: "psycopg.AsyncConnection") -> set[tuple[str, str]]:
            cur = await c.execute(f"INSERT INTO rx_returns VALUES {values} ON CONFLICT (jid, id) DO NOTHING "
                                  "RETURNING jid, id", flat)
            return {(jid, minion_id) for jid, minion_id in await cur.fetchall()}
        try:
            fresh = await self._run(insert)
        except StoreError as exc:
            if "rx_returns_jid_fkey" not in str(exc):
                raise
            for (jid, minion_id), (i, data) in todo.items():
                try:
                    out[i] = await self.store_return(jid, minion_id, data)
                except StoreError as one:
                    out[i] = one
            return out
        for key, (i, _data) in todo.items():
            out[i] = key in fresh
        return out

    async def _expected(self, jid: str, minion_id: str, expected_only: bool) -> None:
        """As the SQLite store's: StoreError, UnknownJob, StoreUnavailable, NotExpected."""
        if validate_minion_id(minion_id):
            raise StoreError(f"bad minion id {minion_id!r}")
        if self._unwritten:
            await self._write_unwritten()
        cached = self._targets.get(jid)
        target = cached[0] if cached is not None else None
        if target is None or minion_id not in target.minions:
            try:
                record, version = await self._record(jid)
            except UnknownJob:
                raise self._no_record(jid) from None
            target = JobTarget.of(record)
            self._targets.put(jid, target, version)
        if expected_only and minion_id not in target.minions:
            raise NotExpected(jid, minion_id, target)

    def _no_record(self, jid: str) -> StoreError:
        if JID_RE.match(jid) and jid >= new_jid(time.time() - RECORD_GRACE_SECONDS):
            return StoreUnavailable(f"job cache: no record of job {jid} (yet): was it not written?")
        return UnknownJob(jid)

    async def returns(self, jid: str) -> dict[str, dict]:
        if not JID_RE.match(jid):
            raise UnknownJob(jid)

        async def read(c: "psycopg.AsyncConnection") -> tuple[Any, list]:
            known = await (await c.execute("SELECT 1 FROM rx_jobs WHERE jid = %s", (jid,))).fetchone()
            rows = await (await c.execute("SELECT id, data FROM rx_returns WHERE jid = %s", (jid,))).fetchall()
            return known, rows
        known, rows = await self._run(read)
        if known is None:
            raise UnknownJob(jid)
        out: dict[str, Any] = {}
        for minion_id, data in rows:
            try:
                out[minion_id] = decode(bytes(data))
            except DecodeError:
                continue
        return out

    async def has_return(self, jid: str, minion_id: str) -> bool:
        async def read(c: "psycopg.AsyncConnection") -> bool:
            cur = await c.execute("SELECT 1 FROM rx_returns WHERE jid = %s AND id = %s", (jid, minion_id))
            return await cur.fetchone() is not None
        return await self._run(read)

    async def jids(self, since: str = "") -> list[str]:
        async def read(c: "psycopg.AsyncConnection") -> list:
            cur = await c.execute("SELECT jid FROM rx_jobs WHERE jid >= %s AND NOT probe ORDER BY jid", (since,))
            return await cur.fetchall()
        return [r[0] for r in await self._run(read)]

    async def list_jobs(self, query: JobQuery) -> list[JobRecord]:
        """The server narrows by start time and user; `query.matches` decides, as for every backend."""
        where, params = ["NOT probe"], []
        if query.start is not None:
            where.append("started >= %s")
            params.append(query.start)
        if query.end is not None:
            where.append("started <= %s")
            params.append(query.end)
        if query.users:
            where.append('"user" = ANY(%s)')
            params.append(list(query.users))
        sql = f"SELECT jid, record FROM rx_jobs WHERE ({') AND ('.join(where)}) AND jid < %s ORDER BY jid DESC LIMIT %s"
        out: list[JobRecord] = []
        before = "9" * 21  # sorts after every jid
        while True:
            async def read(c: "psycopg.AsyncConnection") -> list:
                return await (await c.execute(sql, (*params, before, LIST_BATCH))).fetchall()
            rows = await self._run(read)
            for _jid, raw in rows:
                try:
                    record = check_record(decode(bytes(raw)))
                except (DecodeError, UnknownJob):
                    continue
                if query.matches(record):
                    out.append(record)
                    if len(out) == query.limit:
                        return out
            if len(rows) < LIST_BATCH:
                return out
            before = rows[-1][0]

    async def purge(self, before: str) -> int:
        """PURGE_BATCH_JOBS jobs a transaction, oldest first (their returns go by cascade)."""
        removed = 0
        while True:
            async def delete(c: "psycopg.AsyncConnection") -> int:
                cur = await c.execute("DELETE FROM rx_jobs WHERE jid IN (SELECT jid FROM rx_jobs WHERE jid < %s "
                                      "ORDER BY jid LIMIT %s)", (before, PURGE_BATCH_JOBS))
                return cur.rowcount
            n = await self._run(delete)
            removed += n
            if n < PURGE_BATCH_JOBS:
                return removed
            await asyncio.sleep(0)

    async def expire_probes(self, older_than: float) -> int:
        async def delete(c: "psycopg.AsyncConnection") -> int:
            return (await c.execute("DELETE FROM rx_jobs WHERE probe AND created < %s", (older_than,))).rowcount
        return await self._run(delete)

    async def usage(self) -> int:
        async def size(c: "psycopg.AsyncConnection") -> int:
            cur = await c.execute("SELECT pg_total_relation_size('rx_jobs') + pg_total_relation_size('rx_returns')")
            return int((await cur.fetchone())[0])
        return await self._run(size)

    async def trim(self, max_bytes: int) -> Trimmed | None:
        """Never: the database's size is its administrator's (see the module's doc)."""
        return None

    async def check(self) -> list[str]:
        return []


def _row(jid: str, minion_id: str, data: dict) -> tuple:
    """A return's row: its retcode and success as columns when they are what they should be."""
    retcode, success = data.get("retcode"), data.get("success")
    return (jid, minion_id, retcode if isinstance(retcode, int) and not isinstance(retcode, bool) else None,
            success if isinstance(success, bool) else None, time.time(), encode(data))
