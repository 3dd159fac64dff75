"""A real PostgreSQL server for the tests and benchmarks: `initdb` in a temp dir, `pg_ctl` on a free
loopback port with its unix socket in the same dir, stopped and started again at will (the fault tests
restart it under a running master), removed at the end.

PostgreSQL refuses to run as root: as root the server runs as the `postgres` user (Debian's package
makes it) or `nobody`, owning the temp dir.  `find_bindir()` says where the server programs are, or
why there are none (the caller skips with that reason); `make pg-server` installs Debian's package.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

from .procs import free_port

SUPERUSER = "rx"


def find_bindir() -> tuple[str | None, str]:
    """(directory of initdb/pg_ctl, "") or (None, why there is no server to be had)."""
    found = shutil.which("initdb")
    candidates = [os.path.dirname(os.path.realpath(found))] if found else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True)
    for bindir in candidates:
        if all(os.access(os.path.join(bindir, prog), os.X_OK) for prog in ("initdb", "pg_ctl", "postgres")):
            return bindir, ""
    return None, ("no PostgreSQL server programs (initdb, pg_ctl) on this machine: `make pg-server` installs "
                  "Debian's postgresql package (as root)")


def _server_user() -> str | None:
    """Who runs the server: None (this user) unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root and neither a 'postgres' nor a 'nobody' user exists to run PostgreSQL")


class PostgresServer:
    """One throw-away cluster.  `dsn(dbname)` is a libpq connection string for it; `new_database()` makes an
    empty database (one per test keeps tests apart); `stop()`/`start()` are what a fault test does to it."""

    def __init__(self, bindir: str) -> None:
        self.bindir = bindir
        self.user = _server_user()
        self.dir = Path(tempfile.mkdtemp(prefix="rx-pg-", dir="/tmp"))
        self.data = self.dir / "data"
        self.sockdir = self.dir
        self.log = self.dir / "server.log"
        self.port = free_port()
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
        self._as_server([os.path.join(bindir, "initdb"), "-D", str(self.data), "-U", SUPERUSER, "-A", "trust",
                         "--no-sync", "-E", "UTF8", "--locale=C"])
        self.start()

    def _as_server(self, argv: list[str]) -> subprocess.CompletedProcess:
        prefix = ["runuser", "-u", self.user, "--"] if self.user is not None else []
        done = subprocess.run(prefix + argv, cwd=self.dir, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[:2])} failed ({done.returncode}): {done.stderr.strip() or done.stdout}"
                               f"\n{self._log_tail()}")
        return done

    def _log_tail(self) -> str:
        try:
            return "server log:\n" + "\n".join(self.log.read_text().splitlines()[-20:])
        except OSError:
            return ""

    def start(self) -> None:
        opts = (f"-p {self.port} -k {self.sockdir} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        self._as_server([os.path.join(self.bindir, "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                         "-o", opts, "-w", "-t", "60", "start"])

    def stop(self, mode: str = "fast") -> None:
        self._as_server([os.path.join(self.bindir, "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60",
                         "stop"])

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname={dbname} connect_timeout=5"

    def new_database(self) -> str:
        """An empty database's connection string."""
        import psycopg
        name = "rx_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name} TEMPLATE template0")
        return self.dsn(name)

    def close(self) -> None:
        try:
            self.stop("immediate")
        except (RuntimeError, subprocess.TimeoutExpired):
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


def start_server() -> tuple[PostgresServer | None, str]:
    """(a running server, "") or (None, why not): the reason a test prints when it skips."""
    bindir, why = find_bindir()
    if bindir is None:
        return None, why
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return None, "the psycopg package is not installed (pip install -e '.[test]')"
    try:
        return PostgresServer(bindir), ""
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        return None, f"cannot start a PostgreSQL server: {exc}"
