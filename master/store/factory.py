"""The one factory that opens the master's stores (interfaces in `base`).

Backends today: `sqlite` or `postgres` for the job store (the replay guard is SQLite in the jobs
directory either way: it is this master's own), `files` for keys, grains and the session.  To add one (PostgreSQL jobs, Redis sessions): implement the protocol in
`base.py` in a new module here, add its name to the matching `*_backend` choice in the
config, and a branch in `open_stores`; callers do not change.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from rx.config import narrow
from rx.master.store.base import GrainsStore, JobStore, KeyStore, ReplayGuard, SessionStore, TokenStore
from rx.master.store.errors import StoreError

BACKENDS = {"job_store_backend": ("sqlite", "postgres"), "key_store_backend": ("files",), "grains_store_backend": ("files",),
            "session_store_backend": ("files",), "token_store_backend": ("files",)}


REPLAY_DB_NAME = ".replay.sqlite"
"""The replay guard's database when the job store is not SQLite (else it shares the returns database)."""


@dataclass(frozen=True)
class StoreConfig:
    """What the factory needs of the master config."""

    pki_dir: str
    cachedir: str
    job_store_backend: str = "sqlite"
    postgres_dsn: str = ""
    postgres_pool_size: int = 4
    key_store_backend: str = "files"
    grains_store_backend: str = "files"
    session_store_backend: str = "files"
    token_store_backend: str = "files"
    token_dir: str = ""
    """empty: `<cachedir>/tokens`"""

    @property
    def jobs_dir(self) -> str:
        return os.path.join(self.cachedir, "jobs")


@dataclass
class Stores:
    jobs: JobStore
    replay: ReplayGuard
    keys: KeyStore
    grains: GrainsStore
    session: SessionStore
    tokens: TokenStore

    async def prepare(self) -> None:
        """Create what every store needs (the master does this once, before its children start)."""
        await self.keys.prepare()
        await self.session.prepare()
        await self.jobs.prepare()
        await self.tokens.prepare()

    def close(self) -> None:
        self.replay.close()
        self.jobs.close()

    async def aclose(self) -> None:
        """close(), for a caller inside an event loop: a server's connection pool is closed in it."""
        await self.jobs.aclose()
        self.close()


def open_stores(cfg: StoreConfig) -> Stores:
    """The stores the config names (opening is cheap: connections are made on first use)."""
    for key, allowed in BACKENDS.items():
        if getattr(cfg, key) not in allowed:
            raise StoreError(f"{key}: unknown backend {getattr(cfg, key)!r} (available: {', '.join(allowed)})")
    from rx.master.store.file_grains import FileGrainsStore
    from rx.master.store.file_keys import FileKeyStore
    from rx.master.store.file_session import FileSessionStore
    from rx.master.store.file_tokens import FileTokenStore
    from rx.master.store.sqlite_jobs import Db, SqliteJobStore, SqliteReplayGuard
    jobs: JobStore
    if cfg.job_store_backend == "postgres":
        if not cfg.postgres_dsn:
            raise StoreError("job_store_backend: postgres needs postgres_dsn")
        from rx.master.store.pg_jobs import PgJobStore
        jobs, db = PgJobStore(cfg.postgres_dsn, cfg.postgres_pool_size), Db(Path(cfg.jobs_dir) / REPLAY_DB_NAME)
    else:
        jobs = SqliteJobStore(cfg.jobs_dir)
        db = jobs.db
    return Stores(jobs=jobs, replay=SqliteReplayGuard(db),
                  keys=FileKeyStore(cfg.pki_dir), grains=FileGrainsStore(cfg.cachedir),
                  session=FileSessionStore(cfg.pki_dir),
                  tokens=FileTokenStore(cfg.token_dir or os.path.join(cfg.cachedir, "tokens")))


def store_config(cfg: object) -> StoreConfig:
    """The store settings of a master config."""
    return narrow(cfg, StoreConfig)
