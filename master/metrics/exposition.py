"""/metrics: the processes' counts summed, plus what is read at scrape time (key states, presence, whether
the master runs), rendered by prometheus_client in Prometheus's text format.  This is the one module that
imports prometheus_client; the master's `metrics_port` server and rx-api both serve `MetricsSource.render`.
"""

from __future__ import annotations

import asyncio
from typing import Any, Iterable

from prometheus_client.core import CollectorRegistry, CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.utils import floatToGoString

from rx.daemonize import running_pid
from rx.master.metrics import catalog as c
from rx.master.metrics.shared import Totals, metrics_dir, read_totals
from rx.master.services.presence import PresenceService
from rx.master.store import KeyStore, StoreError, open_stores, store_config

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""Prometheus's text format as every Prometheus reads it (rx's names and labels need no escaping)."""


class MetricsSource:
    """What a scrape reads, for one master config.  `keys`: a key store already open (rx-api passes its
    own); else one is opened on first use and closed by `close`."""

    def __init__(self, cfg: Any, keys: KeyStore | None = None) -> None:
        self.cfg = cfg
        self.directory = metrics_dir(cfg.sock_dir)
        self._keys = keys
        self._stores: Any = None
        self.presence = PresenceService(cfg.sock_dir)

    @property
    def keys(self) -> KeyStore:
        if self._keys is None:
            self._stores = open_stores(store_config(self.cfg))
            self._keys = self._stores.keys
        return self._keys

    async def gauges(self) -> dict[str, dict[tuple[str, ...], float]]:
        keys: dict[str, list[str]] = {}
        for state in c.KEY_STATES:
            try:
                keys[state] = await self.keys.ids(state)
            except (StoreError, OSError):
                keys[state] = []
        up = running_pid(self.cfg.pidfile) is not None
        connected = 0
        if up:
            try:
                report = await self.presence.store.read()
            except StoreError:
                report = None
            if report is not None and report.live:
                connected = len(set(report.minions) & set(keys["accepted"]))
        return {"rx_keys": {(state,): len(ids) for state, ids in keys.items()},
                "rx_master_up": {(): float(up)}, "rx_minions_connected": {(): connected}}

    async def render(self) -> bytes:
        """The text exposition (CONTENT_TYPE).  Reading the snapshots and rendering take a few ms to tens of
        ms (8 busy workers: bench/metrics_cost.py): they run in a thread, off the caller's event loop."""
        totals = await asyncio.to_thread(read_totals, self.directory)
        return await asyncio.to_thread(render, totals, await self.gauges())

    def close(self) -> None:
        if self._stores is not None:
            self._stores.close()
            self._stores = self._keys = None


class _Static:
    def __init__(self, families: list[Any]) -> None:
        self.families = families

    def collect(self) -> Iterable[Any]:
        return self.families


def families(totals: Totals, gauges: dict[str, dict[tuple[str, ...], float]]) -> list[Any]:
    """One metric family per catalog entry, in catalog order; fixed label values are there at 0."""
    out: list[Any] = []
    for spec in c.SPECS:
        if spec.optional and spec.name not in totals.counters:
            continue
        labels = list(spec.labels)
        if spec.kind == c.HISTOGRAM:
            fam: Any = HistogramMetricFamily(spec.name, spec.doc, labels=labels)
            series = dict.fromkeys(spec.fixed, None) | totals.histograms.get(spec.name, {})
            for key, value in sorted(series.items()):
                counts, total = value if value is not None else ([0] * (len(spec.buckets) + 1), 0.0)
                if len(counts) != len(spec.buckets) + 1:
                    continue
                cumulative, running = [], 0
                for bound, n in zip([*spec.buckets, float("inf")], counts):
                    running += n
                    cumulative.append((floatToGoString(bound), running))
                fam.add_metric(list(key), cumulative, total)
        else:
            kind = CounterMetricFamily if spec.kind == c.COUNTER else GaugeMetricFamily
            fam = kind(spec.name, spec.doc, labels=labels)
            source = totals.counters if spec.kind == c.COUNTER else gauges
            series = dict.fromkeys(spec.fixed, 0) | source.get(spec.name, {})
            if not labels and not series:
                series = {(): 0}
            for key, value in sorted(series.items()):
                if len(key) == len(labels):
                    fam.add_metric(list(key), value)
        out.append(fam)
    return out


def render(totals: Totals, gauges: dict[str, dict[tuple[str, ...], float]]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Static(families(totals, gauges)))  # type: ignore[arg-type]
    return generate_latest(registry)
