"""The presence store: which minions hold a live, verified connection to this master's publish port
(rx.transport.presence), as the publisher last reported it.  The publisher writes it; `manage.present`
and the other presence runners read it.

Backend today: one file, `<sock_dir>/presence` (0600, replaced atomically at most twice a second),
written with the publisher's pid so a reader can tell a report left by a master that is gone.  A
store for several masters (Redis, with HA) implements the same two coroutines.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from rx.master.store.errors import StoreError
from rx.transport.codec import DecodeError, decode, encode

PRESENCE_FILE = "presence"


@dataclass(frozen=True)
class PresenceReport:
    minions: dict[str, dict] = field(default_factory=dict)
    """`{id: {"since": time connected, "addr": peer address, "connections": n}}`"""
    updated: float = 0.0
    pid: int = 0
    """the publisher process that wrote it"""
    left: dict[str, float] = field(default_factory=dict)
    """`{id: time}` of minions not connected now: when the publisher last saw each connected (last seen)."""

    @property
    def live(self) -> bool:
        """Whether the publisher that wrote it still runs."""
        if self.pid <= 0:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


class PresenceStore(Protocol):
    async def publish(self, minions: dict[str, dict], left: dict[str, float] | None = None) -> None:
        """Replace the report with `minions` and `left` (by this process)."""

    async def read(self) -> PresenceReport | None:
        """The last report, or None if there is none."""


class FilePresenceStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._cached: tuple[tuple[int, int, int], PresenceReport] | None = None
        """The last report read and the file's (inode, mtime, size) then: readers that ask often (every
        client's lookup) decode the file once per change."""

    async def publish(self, minions: dict[str, dict], left: dict[str, float] | None = None) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(encode({"pid": os.getpid(), "updated": time.time(), "minions": minions, "left": left or {}}))
        os.replace(tmp, self.path)

    async def read(self) -> PresenceReport | None:
        try:
            with open(self.path, "rb") as f:
                st = os.fstat(f.fileno())
                stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
                if self._cached is not None and self._cached[0] == stamp:
                    return self._cached[1]
                raw = f.read()
        except FileNotFoundError:
            return None
        try:
            data: Any = decode(raw)
            report = PresenceReport(dict(data["minions"]), float(data["updated"]), int(data["pid"]),
                                    {str(k): float(v) for k, v in dict(data.get("left") or {}).items()})
        except (DecodeError, KeyError, TypeError, ValueError):
            raise StoreError(f"the presence report {self.path} is corrupt (the publisher rewrites it within a "
                             "second of the next change)") from None
        self._cached = (stamp, report)
        return report


def presence_path(sock_dir: str) -> str:
    return os.path.join(sock_dir, PRESENCE_FILE)


def open_presence(sock_dir: str) -> PresenceStore:
    return FilePresenceStore(presence_path(sock_dir))
