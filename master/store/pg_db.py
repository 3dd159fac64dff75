"""This process's connection pool to the PostgreSQL server of the job store (psycopg 3, psycopg_pool),
and what turns the server's faults into the store's errors.

- Connections are in autocommit mode: storing a return is one round trip; an operation that needs a
  transaction asks for one (`atomic`).
- The pool is opened on first use, in the process and event loop that use it (a forked MWorker opens
  its own), and never waits at open: a master starts while PostgreSQL is down.
- A server that cannot be reached, is restarting, shutting down, out of disk or read-only is
  `StoreUnavailable` (the minion keeps its return in its spool and sends it again); an operation is also
  given up after OP_TIMEOUT (a server that hangs), never holding a worker.
- A connection broken under the pool (the server restarted) is found at its next use: the pool's idle
  connections are checked (the dead ones dropped) and the operation tried once more, so a restart costs no
  failed request when the server is back.
- What is logged: one line per LOG_INTERVAL seconds per process while the server is unavailable (the
  pool's own reconnect warnings are kept out), and one when it answers again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import TYPE_CHECKING, Any, Awaitable, Callable, TypeVar

from rx.master.store.errors import StoreError, StoreUnavailable

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import AsyncConnectionPool

log = logging.getLogger("rx.master.store")
T = TypeVar("T")

CONNECT_WAIT = 2.0
"""How long an operation waits for a connection from the pool before the store says "unavailable"."""
OP_TIMEOUT = 15.0
"""An operation (with its wait for a connection) taking longer than this is given up: unavailable."""
LOG_INTERVAL = 10.0
_UNAVAILABLE_CLASSES = ("08", "53", "57", "25006", "40001", "40P01", "55P03", "58")
"""SQLSTATE classes and codes that mean "not now": connection exceptions, insufficient resources (a full
disk), operator intervention (shutdown, restart, cannot connect now), read-only transaction,
serialization failure and deadlock, lock not available, system errors (I/O)."""


def describe(dsn: str) -> str:
    """The connection string without its password, for logs and errors."""
    try:
        from psycopg.conninfo import conninfo_to_dict
        parts = conninfo_to_dict(dsn)
    except Exception:  # noqa: BLE001 - a malformed string is shown as "?" rather than leaked
        return "?"
    parts.pop("password", None)
    return " ".join(f"{k}={v}" for k, v in parts.items())


class PgDb:
    """The pool of one process; `run(op)` runs `op(connection)`."""

    def __init__(self, dsn: str, pool_size: int = 4) -> None:
        self.dsn = dsn
        self.pool_size = pool_size
        self.where = describe(dsn)
        self._pool: "AsyncConnectionPool | None" = None
        self._pool_key: tuple[int, Any] | None = None
        self._down_since = 0.0
        self._logged = 0.0
        self._failures = 0

    async def _get_pool(self) -> "AsyncConnectionPool":
        from psycopg_pool import AsyncConnectionPool
        key = (os.getpid(), asyncio.get_running_loop())
        if self._pool is None or self._pool_key != key:
            logging.getLogger("psycopg.pool").setLevel(logging.ERROR)  # its reconnect warnings: ours say it once
            self._pool = AsyncConnectionPool(self.dsn, min_size=1, max_size=self.pool_size, open=False,
                                             timeout=CONNECT_WAIT, reconnect_timeout=60.0,
                                             kwargs={"autocommit": True}, name="rx-jobs")
            self._pool_key = key
            await self._pool.open(wait=False)
        return self._pool

    async def run(self, op: Callable[["psycopg.AsyncConnection"], Awaitable[T]], *, atomic: bool = False) -> T:
        """`op(conn)`, each statement committed as it runs (one round trip for a one-statement operation), or
        with `atomic` in one transaction; tried again once on a fresh connection if the one the pool gave
        was broken; StoreUnavailable or StoreError from the server's errors."""
        try:
            async with asyncio.timeout(OP_TIMEOUT):
                result = await self._run(op, atomic)
        except TimeoutError:
            raise self._unavailable(f"no answer within {OP_TIMEOUT:g}s") from None
        if self._down_since:
            log.warning("job store: PostgreSQL (%s) answers again after %.1fs; %d request(s) were answered "
                        "\"retry later\" meanwhile", self.where, time.monotonic() - self._down_since, self._failures)
            self._down_since, self._failures = 0.0, 0
        return result

    async def _run(self, op: Callable[["psycopg.AsyncConnection"], Awaitable[T]], atomic: bool) -> T:
        import psycopg
        from psycopg_pool import PoolTimeout
        pool = await self._get_pool()
        for attempt in (1, 2):
            try:
                async with pool.connection() as conn:
                    if not atomic:
                        return await op(conn)
                    async with conn.transaction():
                        return await op(conn)
            except PoolTimeout as exc:
                raise self._unavailable(f"cannot connect: {exc}") from None
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                if attempt == 1 and not _server_said_no(exc):
                    await pool.check()  # the other idle connections died with it: drop them, then once more
                    continue
                raise self._failed(exc) from None
            except psycopg.Error as exc:
                raise self._failed(exc) from None
        raise AssertionError("unreachable")

    def _failed(self, exc: Exception) -> StoreError:
        state = getattr(exc, "sqlstate", None) or ""
        import psycopg
        if (isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)) and not state) or \
                state.startswith(_UNAVAILABLE_CLASSES):
            return self._unavailable(_first_line(exc))
        if state == "42P01":  # undefined table
            return StoreUnavailable(f"job store (PostgreSQL {self.where}): its tables are missing: has the master "
                                    f"started against this database? ({_first_line(exc)})")
        return StoreError(f"job store (PostgreSQL {self.where}): {_first_line(exc)}")

    def _unavailable(self, why: str) -> StoreUnavailable:
        now = time.monotonic()
        self._failures += 1
        if not self._down_since:
            self._down_since = now
        if now - self._logged >= LOG_INTERVAL:
            self._logged = now
            log.error("job store: PostgreSQL (%s) is unavailable: %s; returns are answered \"retry later\" (minions "
                      "keep them in their spool) until it is back", self.where, why)
        return StoreUnavailable(f"job store (PostgreSQL {self.where}): {why}")

    async def aclose(self) -> None:
        """Close this process's pool from inside the event loop that opened it."""
        pool, self._pool = self._pool, None
        if pool is not None and self._pool_key == (os.getpid(), asyncio.get_running_loop()):
            await pool.close()

    def close(self) -> None:
        """Drop this process's pool (its connections close with the process or the loop that opened them)."""
        pool, self._pool = self._pool, None
        if pool is None or self._pool_key is None or self._pool_key[0] != os.getpid():
            return
        loop = self._pool_key[1]
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            running.create_task(pool.close())
        elif not loop.is_closed() and not loop.is_running():
            loop.run_until_complete(pool.close())


def _server_said_no(exc: Exception) -> bool:
    """An error the server answered (a SQLSTATE), as opposed to a connection found broken."""
    return bool(getattr(exc, "sqlstate", None)) and not str(getattr(exc, "sqlstate", "")).startswith(("08", "57"))


def _first_line(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
