"""When the master last heard from each minion (a sealed request it opened), shared by all its workers.

A client's `lookup` asks this to tell a silent minion that is alive (busy: its other requests keep
coming) from one that is gone.  Every worker records into, and reads from, one table, so the answer
does not depend on which worker took the minion's requests and which took the client's lookup.

`SharedPresence` is the single-host table: a memory-mapped file in `sock_dir` of SLOTS entries
(hash of the id, CLOCK_MONOTONIC seconds), one slot per id by its hash.  Workers are forked from one
supervisor, so Python's string hash agrees between them.  Two ids that share a slot overwrite each
other: the one written last is known, the other reads as not heard (the client then decides as it
would without the table: it does not take the minion for busy).  Several masters will share a table
in Redis behind the same `Presence` interface.
"""

from __future__ import annotations

import mmap
import os
import struct
from typing import Iterable, Protocol

SLOTS = 1 << 16
ENTRY = struct.Struct("<qd")
PRESENCE_FILE = "heard.map"


class Presence(Protocol):
    def heard(self, minion_id: str, now: float) -> None:
        """Record that a sealed request from `minion_id` was opened at `now` (time.monotonic)."""

    def ages(self, ids: Iterable[str], now: float) -> dict[str, float]:
        """Seconds since each of `ids` was last heard from (those heard from at all)."""


class LocalPresence:
    """One process's memory only (rx-run, tests): what this process heard."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}

    def heard(self, minion_id: str, now: float) -> None:
        self._seen[minion_id] = now

    def ages(self, ids: Iterable[str], now: float) -> dict[str, float]:
        return {m: round(now - self._seen[m], 3) for m in ids if m in self._seen}


class SharedPresence:
    """The table in `path`, created (mode 0600) by the first worker that opens it."""

    def __init__(self, path: str, slots: int = SLOTS) -> None:
        self.slots = slots
        size = slots * ENTRY.size
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            if os.fstat(fd).st_size != size:  # not ours, or of another SLOTS: start empty
                os.ftruncate(fd, 0)
                os.ftruncate(fd, size)
            self._map = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        finally:
            os.close(fd)

    def _slot(self, minion_id: str) -> tuple[int, int]:
        h = hash(minion_id)
        return (h % self.slots) * ENTRY.size, h

    def heard(self, minion_id: str, now: float) -> None:
        offset, h = self._slot(minion_id)
        ENTRY.pack_into(self._map, offset, h, now)

    def ages(self, ids: Iterable[str], now: float) -> dict[str, float]:
        out = {}
        for minion_id in ids:
            offset, h = self._slot(minion_id)
            stored, when = ENTRY.unpack_from(self._map, offset)
            if stored == h and 0 < when <= now:
                out[minion_id] = round(now - when, 3)
        return out

    def close(self) -> None:
        self._map.close()
