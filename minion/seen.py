"""The jids a minion has run within the freshness window, kept across restarts.

A captured publication re-sent right after a restart is still fresh (the gate accepts jobs a few
seconds older than its first session), so the memory of what ran must outlive the process: every
admitted jid is appended to `<cachedir>/seen_jids` before its job starts.  The file is loaded at
start, pruned to the window once the master's clock is known, and rewritten when it has grown to
twice what is live.  A line that does not parse (a write cut short) is skipped, never fatal.

The append is a plain write(2) on an O_APPEND descriptor, without fsync: it survives the process
being killed at any point; after a power loss the machine's reboot takes longer than the slack
the gate allows, so the jobs the file could have lost are stale anyway.
"""

from __future__ import annotations

import collections
import logging
import math
import os
from pathlib import Path

from rx.logsetup import RateLimitedLog
from rx.transport.ids import is_jid

log = logging.getLogger("rx.minion")
_trouble = RateLimitedLog(log)

COMPACT_MIN_LINES = 4096
"""The file is rewritten when it holds more lines than this and twice the live entries."""


class SeenJids:
    """jid -> job timestamp (master clock), oldest first; with `path`, also on disk."""

    def __init__(self, path: Path | None, window: float, most: int) -> None:
        self.path = path
        self.window = window
        self.most = most
        self._jids: collections.OrderedDict[str, float] = collections.OrderedDict()
        self._fd = -1
        self._lines = 0
        if path is not None:
            self._load(path)

    def __contains__(self, jid: object) -> bool:
        return jid in self._jids

    def __len__(self) -> int:
        return len(self._jids)

    def add(self, jid: str, ts: float, master_now: float) -> None:
        """Remember `jid` (on disk first, when persistent) and forget what has left the window."""
        self._jids[jid] = ts
        if self.path is not None:
            self._append(f"{jid} {ts!r}\n")
        self.prune(master_now)

    def prune(self, master_now: float) -> None:
        """Forget jids published before the window (by the master's clock), and the oldest past `most`."""
        oldest = master_now - self.window
        while self._jids and (len(self._jids) > self.most or next(iter(self._jids.values())) < oldest):
            self._jids.popitem(last=False)
        if self.path is not None and self._lines > max(COMPACT_MIN_LINES, 2 * len(self._jids)):
            self.compact()

    def compact(self) -> None:
        """Rewrite the file with the live entries only (a new file renamed over the old one)."""
        if self.path is None:
            return
        tmp = self.path.with_name(self.path.name + ".new")
        try:
            with open(tmp, "w") as f:
                f.writelines(f"{jid} {ts!r}\n" for jid, ts in self._jids.items())
            os.replace(tmp, self.path)
        except OSError as exc:
            _trouble(logging.ERROR, "cannot rewrite %s: %s", self.path, exc)
            return
        self._close()
        self._lines = len(self._jids)

    def close(self) -> None:
        self._close()

    def _load(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "rb") as f:
                lines = f.read().split(b"\n")
        except FileNotFoundError:
            return
        except OSError as exc:
            log.error("cannot read the jids already run from %s: %s", path, exc)
            return
        entries = [entry for entry in map(_parse, lines) if entry is not None]
        for jid, ts in sorted(entries, key=lambda e: e[1]):
            self._jids[jid] = ts
        self._lines = len(lines)
        unreadable = sum(1 for line in lines if line.strip()) - len(entries)
        if unreadable:
            log.warning("skipped %d unreadable line(s) in %s", unreadable, path)
        if unreadable or lines[-1]:
            self.compact()  # so that the next line appended does not continue a torn one

    def _append(self, line: str) -> None:
        assert self.path is not None
        try:
            if self._fd < 0:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            os.write(self._fd, line.encode())
            self._lines += 1
        except OSError as exc:
            _trouble(logging.ERROR, "cannot record a jid in %s (it is refused again only until a restart): %s",
                     self.path, exc)

    def _close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _parse(line: bytes) -> tuple[str, float] | None:
    """(jid, ts) from one line, or None for anything else (a torn or foreign line)."""
    parts = line.split()
    if len(parts) != 2:
        return None
    try:
        jid, ts = parts[0].decode("ascii"), float(parts[1])
    except (UnicodeDecodeError, ValueError):
        return None
    return (jid, ts) if is_jid(jid) and math.isfinite(ts) else None
