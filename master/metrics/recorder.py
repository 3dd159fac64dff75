"""What a master process counts, in its own memory: plain dicts and lists, a few hundred nanoseconds an
update (prometheus_client's objects cost 2-4 µs each, with a lock; see bench/metrics_cost.py).  Once a
second the process writes what it counted so far to its snapshot file (rx.master.metrics.shared), and
only when it changed; the exporter sums the files of all processes at scrape time.

Nothing here imports prometheus_client: only the process that serves /metrics does.
"""

from __future__ import annotations

import calendar
import fcntl
import logging
import os
from bisect import bisect_left
from typing import Any

from rx.master.metrics import catalog as c
from rx.master.metrics.shared import FUNS_FILE, snapshot_path, write_snapshot

log = logging.getLogger(__name__)


class Histogram:
    """One histogram series: a count per bucket (not cumulative; the last is +Inf) and the sum."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, value: float, times: int = 1) -> None:
        """Count `value` (`times` times: a batch's share of its time, once per request in it)."""
        self.counts[bisect_left(self.bounds, value)] += times
        self.total += value * times


class Recorder:
    """One process's counters and histograms, by metric name and label values; `flush` writes them to
    `<directory>/<name>.<pid>.snap` when they changed (no directory: kept in memory only)."""

    def __init__(self, directory: str | None = None, name: str = "process") -> None:
        self.directory = directory
        self.name = name
        self.pid = os.getpid()
        self.counters: dict[str, dict[tuple[str, ...], float]] = {
            s.name: {} for s in c.SPECS if s.kind == c.COUNTER}
        self.histograms: dict[str, dict[tuple[str, ...], Histogram]] = {
            s.name: {} for s in c.SPECS if s.kind == c.HISTOGRAM}
        self._written = b""

    def histogram(self, name: str, *labels: str) -> Histogram:
        """The series of `name` with these label values (made once; keep it for the hot path)."""
        series = self.histograms[name]
        hist = series.get(labels)
        if hist is None:
            hist = series[labels] = Histogram(c.BY_NAME[name].buckets)
        return hist

    def inc(self, name: str, *labels: str, amount: float = 1) -> None:
        series = self.counters[name]
        series[labels] = series.get(labels, 0) + amount

    def snapshot(self) -> dict[str, Any]:
        return {"c": [[name, list(labels), value] for name, series in self.counters.items()
                      for labels, value in series.items()],
                "h": [[name, list(labels), list(h.counts), h.total] for name, series in self.histograms.items()
                      for labels, h in series.items()]}

    def flush(self) -> bool:
        """Write the snapshot if it changed since the last write; False if it could not be written."""
        if self.directory is None:
            return True
        try:
            self._written = write_snapshot(snapshot_path(self.directory, self.name, self.pid), self.snapshot(),
                                           self._written)
        except OSError as exc:
            log.debug("cannot write the metrics snapshot: %s", exc)
            return False
        return True


class FunLabels:
    """The `fun` label of a function name: the name itself for the first MAX_FUN_LABELS names the master
    sees, `other` after.  "The master" is every process: the names given labels are kept in one file
    (`<directory>/funs`, under a lock), read again only when this process meets a name it has not seen
    while there is still room; once the file is full its list is final, and no file is read again."""

    CACHE_MAX = 10_000

    def __init__(self, directory: str | None = None, cap: int = c.MAX_FUN_LABELS) -> None:
        self.path = os.path.join(directory, FUNS_FILE) if directory else None
        self.cap = cap
        self._labels: dict[str, str] = {}
        self._given: set[str] = set()
        self._full = False

    def __call__(self, fun: str | list) -> str:
        if not isinstance(fun, str):
            return self(fun[0]) if len(fun) == 1 else c.COMPOUND
        label = self._labels.get(fun)
        if label is None:
            label = self._decide(fun)
        return label

    def _decide(self, fun: str) -> str:
        if len(fun) > c.MAX_FUN_LABEL_CHARS or fun in (c.OTHER, c.COMPOUND):
            return c.OTHER
        if not self._full:
            self._given = self._claim(fun)
            self._full = len(self._given) >= self.cap
        label = fun if fun in self._given else c.OTHER
        if len(self._labels) < self.CACHE_MAX:
            self._labels[fun] = label
        return label

    def _claim(self, fun: str) -> set[str]:
        """The names given labels, `fun` added if there is room."""
        given = set(self._given)
        if self.path is None:
            if len(given) < self.cap:
                given.add(fun)
            return given
        try:
            with open(self.path, "a+", encoding="utf-8") as f:
                fcntl.flock(f, fcntl.LOCK_EX)
                f.seek(0)
                given = set(f.read().split())
                if fun not in given and len(given) < self.cap:
                    f.write(fun + "\n")
                    given.add(fun)
        except OSError as exc:  # the metrics directory is gone (master stopping): decide in memory
            log.debug("cannot read %s: %s", self.path, exc)
            if len(given) < self.cap:
                given.add(fun)
        return given


_SECONDS: dict[str, float | None] = {}
_SECONDS_KEPT = 256
"""Seconds of jids whose time `jid_time` keeps: the returns of one job share it, and the jobs in flight span
minutes, not hours.  (It kept 4,096: a worker's RSS then grew by ~0.5 MB over an hour of steady load before
the cache was cleared, which the reliability soak measured as growth.)"""
_UNSEEN = -1.0


def jid_time(jid: str) -> float | None:
    """The time a jid was allocated (its first 18 digits: UTC to 1/10,000 s); None if they are no time."""
    second = jid[:14]
    base = _SECONDS.get(second, _UNSEEN)
    if base == _UNSEEN:
        try:
            base = float(calendar.timegm((int(second[:4]), int(second[4:6]), int(second[6:8]), int(second[8:10]),
                                          int(second[10:12]), int(second[12:14]), 0, 0, 0)))
            if not (1 <= int(second[4:6]) <= 12 and 1 <= int(second[6:8]) <= 31):
                base = None
        except ValueError:
            base = None
        if len(_SECONDS) >= _SECONDS_KEPT:
            _SECONDS.clear()
        _SECONDS[second] = base
    if base is None:
        return None
    return base + int(jid[14:18]) / 10_000
