"""The master's job cache: one directory per jid, one file per minion return.

A return is created with O_EXCL, so a second return for the same (jid, id) —
a replay or a duplicate — is refused without touching the first.
"""

from __future__ import annotations

import datetime
import os
import shutil
import time
from pathlib import Path
from typing import Any

from rx.config import validate_minion_id
from rx.transport.codec import DecodeError, decode, encode
from rx.transport.messages import JID_RE


class JobExists(Exception):
    pass


class UnknownJob(Exception):
    pass


def new_jid(now: float | None = None) -> str:
    """A 20-digit, time-ordered job id (UTC, microseconds)."""
    t = datetime.datetime.fromtimestamp(time.time() if now is None else now, tz=datetime.timezone.utc)
    return t.strftime("%Y%m%d%H%M%S%f")


class JobCache:
    def __init__(self, jobs_dir: str | Path) -> None:
        self.root = Path(jobs_dir)

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
        path = self._job_dir(jid)
        if not path.is_dir():
            raise UnknownJob(jid)
        try:
            fd = os.open(path / minion_id, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as f:
            f.write(encode(ret))
        return True

    def load(self, jid: str) -> dict:
        try:
            return decode((self._job_dir(jid) / ".load").read_bytes())
        except (FileNotFoundError, DecodeError):
            raise UnknownJob(jid) from None

    def returns(self, jid: str) -> dict[str, Any]:
        path = self._job_dir(jid)
        out = {}
        for name in os.listdir(path):
            if not name.startswith("."):
                try:
                    out[name] = decode((path / name).read_bytes())
                except DecodeError:
                    continue
        return out

    def purge(self, keep_hours: float, now: float | None = None) -> int:
        """Remove jobs older than `keep_hours` (by jid time); returns how many."""
        if keep_hours <= 0:
            return 0
        cutoff = new_jid((time.time() if now is None else now) - keep_hours * 3600)
        removed = 0
        for name in os.listdir(self.root):
            if JID_RE.match(name) and name < cutoff:
                shutil.rmtree(self.root / name, ignore_errors=True)
                removed += 1
        return removed
