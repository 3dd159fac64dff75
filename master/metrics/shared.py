"""How the master's processes share their counts: one directory, `<sock_dir>/metrics` (in the 0700 sock_dir,
emptied when the master starts and stops), where each process that counts keeps a snapshot of everything
it counted since it started, `<name>.<pid>.snap` (msgpack, replaced atomically, at most once a second).

A scrape sums the snapshots.  When a child dies, the supervisor folds its last snapshot into
`retired.snap` and removes it, so counters never go down when a worker is restarted (what the dead
process counted after its last write, at most a second's worth, is lost), and the directory does not
grow with restarts.  Folding holds `.lock` exclusively and reading holds it shared, so a scrape sees a
dead process's counts exactly once.  Snapshots are whole (not deltas): a process that writes again after
the directory was emptied loses nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from rx.transport.codec import DecodeError, decode, encode

DIRECTORY = "metrics"
FUNS_FILE = "funs"
LOCK_FILE = ".lock"
RETIRED = "retired"
SUFFIX = ".snap"


def metrics_dir(sock_dir: str) -> str:
    return os.path.join(sock_dir, DIRECTORY)


def snapshot_path(directory: str, name: str, pid: int) -> str:
    return os.path.join(directory, f"{name}.{pid}{SUFFIX}")


def reset(directory: str) -> None:
    """An empty directory (0700): what a master starts with."""
    remove(directory)
    os.mkdir(directory, 0o700)


def remove(directory: str) -> None:
    shutil.rmtree(directory, ignore_errors=True)


def write_snapshot(path: str, snapshot: dict[str, Any], last: bytes = b"") -> bytes:
    """Replace `path` with `snapshot` unless it encodes to `last`; returns what the file now holds."""
    data = encode(snapshot)
    if data != last:
        head, tail = os.path.split(path)
        tmp = os.path.join(head, f".{tail}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    return data


@dataclass
class Totals:
    """Counters and histograms summed over snapshots: {name: {labels: value}} and {name: {labels: [counts, sum]}}."""

    counters: dict[str, dict[tuple[str, ...], float]] = field(default_factory=dict)
    histograms: dict[str, dict[tuple[str, ...], list]] = field(default_factory=dict)

    def add(self, snapshot: Any) -> None:
        """Add one snapshot; entries of an unexpected shape (another rx version's) are skipped."""
        if not isinstance(snapshot, dict):
            return
        for entry in snapshot.get("c") or ():
            try:
                name, labels, value = entry
                series = self.counters.setdefault(str(name), {})
                key = tuple(map(str, labels))
                series[key] = series.get(key, 0) + float(value)
            except (TypeError, ValueError):
                continue
        for entry in snapshot.get("h") or ():
            try:
                name, labels, counts, total = entry
                series = self.histograms.setdefault(str(name), {})
                key = tuple(map(str, labels))
                have = series.get(key)
                if have is None:
                    series[key] = [[int(n) for n in counts], float(total)]
                elif len(have[0]) == len(counts):
                    have[0] = [a + int(b) for a, b in zip(have[0], counts)]
                    have[1] += float(total)
            except (TypeError, ValueError):
                continue

    def snapshot(self) -> dict[str, Any]:
        return {"c": [[n, list(k), v] for n, s in self.counters.items() for k, v in s.items()],
                "h": [[n, list(k), h[0], h[1]] for n, s in self.histograms.items() for k, h in s.items()]}


@contextlib.contextmanager
def _locked(directory: str, how: int) -> Iterator[None]:
    fd = os.open(os.path.join(directory, LOCK_FILE), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, how)
        yield
    finally:
        os.close(fd)


def _read(path: str) -> Any:
    try:
        with open(path, "rb") as f:
            return decode(f.read())
    except (FileNotFoundError, DecodeError):
        return None


def read_totals(directory: str) -> Totals:
    """Every process's counts summed (none if the directory does not exist: the master is not running)."""
    totals = Totals()
    try:
        with _locked(directory, fcntl.LOCK_SH):
            for name in os.listdir(directory):
                if name.endswith(SUFFIX) and not name.startswith("."):
                    totals.add(_read(os.path.join(directory, name)))
    except FileNotFoundError:
        pass
    return totals


def fold(directory: str, name: str, pid: int) -> None:
    """Add a dead process's last snapshot into `retired.snap` and remove it (and an unfinished write of it)."""
    path = snapshot_path(directory, name, pid)
    with _locked(directory, fcntl.LOCK_EX):
        dead = _read(path)
        if dead is not None:
            totals = Totals()
            totals.add(_read(os.path.join(directory, RETIRED + SUFFIX)))
            totals.add(dead)
            write_snapshot(os.path.join(directory, RETIRED + SUFFIX), totals.snapshot())
        for gone in (path, os.path.join(directory, f".{os.path.basename(path)}.tmp")):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(gone)
