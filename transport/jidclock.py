"""Allocating jids: unique and increasing on a master host across processes (every MWorker and every local
client), restarts and a clock stepped backwards, and unique across masters sharing a job store.

A jid keeps Salt's look, 20 digits `YYYYmmddHHMMSSffffff` in UTC, so people and tools read its time;
its last two digits are the master's `jid_node` (00-99) instead of microseconds:

    YYYYmmddHHMMSS  ffff  NN
    UTC second      1/10,000 s (a "slot")  jid_node

Every allocator on the host takes the next slot under an exclusive lock on one small file
(`<cachedir>/.jid_clock`, holding the last slot allocated): max(now's slot, last + 1).  So two allocations
never share a slot, a restart continues after the last one, and after the clock steps back jids go on
from the last one (one slot apart, ahead of the clock) until the clock catches up.  Two masters with
different `jid_node` never allocate the same jid; a job store also refuses a jid it already holds.

A process that cannot open the file (a client without access to the master's cachedir) allocates in
its own memory (still increasing within the process; the store refuses a duplicate).
"""

from __future__ import annotations

import datetime
import fcntl
import os
import threading
import time

JID_CLOCK_FILE = ".jid_clock"
SLOTS_PER_SECOND = 10_000
NODE_MAX = 99
_WIDTH = 24
"""The file holds the last slot as decimal digits, padded to this width."""


def slot_jid(slot: int, node: int) -> str:
    """The jid of a slot (1/10,000 s since the epoch) on master `node`."""
    seconds, frac = divmod(slot, SLOTS_PER_SECOND)
    stamp = datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc).strftime("%Y%m%d%H%M%S")
    return f"{stamp}{frac:04d}{node:02d}"


class JidClock:
    def __init__(self, path: str | os.PathLike | None, node: int = 0) -> None:
        if not 0 <= node <= NODE_MAX:
            raise ValueError(f"jid_node must be 0-{NODE_MAX}, not {node}")
        self.path = path
        self.node = node
        self._last = 0
        self._lock = threading.Lock()

    @staticmethod
    def create(path: str | os.PathLike) -> None:
        """Make the file (the master does at start, as the user it runs as): allocators only open it."""
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)

    def next(self, now: float | None = None) -> str:
        """A new jid (`now`: the time to allocate at, for tests)."""
        slot = int((time.time() if now is None else now) * SLOTS_PER_SECOND)
        with self._lock:
            shared = self._next_shared(slot)
            self._last = max(slot, self._last + 1) if shared is None else shared
            return slot_jid(self._last, self.node)

    def _next_shared(self, slot: int) -> int | None:
        if self.path is None:
            return None
        try:
            fd = os.open(self.path, os.O_RDWR)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            raw = os.pread(fd, _WIDTH, 0)
            try:
                last = int(raw.decode("ascii").strip() or 0)
            except (UnicodeDecodeError, ValueError):
                last = 0  # a torn or foreign file: the clock (and this process's last) still bound it
            slot = max(slot, last + 1, self._last + 1)
            os.pwrite(fd, f"{slot:>{_WIDTH}d}".encode(), 0)
            return slot
        except OSError:
            return None
        finally:
            os.close(fd)
