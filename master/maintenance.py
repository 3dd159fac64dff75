"""Maintenance process: key-change watch, publish-key rotation, job-cache retention (age, size bound,
probes), and the job cache's health (a returns database deleted or replaced is reported on the bus).

A minion key removed from `accepted` (by rx-key or by hand) rotates the session serial unless a
rotation already followed it, so a deleted or rejected minion can neither read later
publications nor return.
"""

from __future__ import annotations

import asyncio
import logging
import time

from rx.config import MasterConfig
from rx.master.context import DropLog
from rx.master.pillar.cache import PillarCache, PillarPrune
from rx.master.store import PROBE_KEEP_SECONDS, StoreError, Stores, open_stores, store_config
from rx.transport.events import Event, JobCacheEvent, KeyRotateEvent
from rx.transport.ids import new_jid
from rx.transport.roles import EventSink, ipc_url, open_transport

log = logging.getLogger(__name__)

WATCH_INTERVAL = 0.5
PURGE_INTERVAL = 3600.0
TRIM_INTERVAL = 10.0
"""How often the job cache's size is checked against `job_cache_max_mb` (and old probes expire); at least
TRIM_COST_FACTOR times what the last check took, so counting a huge cache costs at most ~2% of a core."""
TRIM_COST_FACTOR = 50
fault_log = DropLog("maintenance: the store failed; trying again", "failed", interval=10.0, level=logging.ERROR)


class KeyWatch:
    """Notices accepted keys disappearing and rotates when nobody else has."""

    def __init__(self, stores: Stores) -> None:
        self.stores = stores
        self._version: object = object()
        self._ids: set[str] | None = None
        self._serial: int | None = None

    async def check(self) -> bool:
        """Returns True if it rotated."""
        serial = (await self.stores.session.current()).serial
        version = await self.stores.keys.accepted_version()
        if self._ids is not None and version == self._version:
            self._serial = serial
            return False
        self._version = version
        ids = set(await self.stores.keys.ids("accepted"))
        removed = (self._ids or set()) - ids
        self._ids = ids
        rotated = False
        if removed and serial == self._serial:
            serial = (await self.stores.session.rotate()).serial
            log.info("accepted key(s) removed (%s): session key rotated to serial %d",
                     ", ".join(sorted(removed)[:5]), serial)
            rotated = True
        self._serial = serial
        return rotated


class Maintenance:
    def __init__(self, cfg: MasterConfig, stores: Stores, events: EventSink) -> None:
        self.cfg = cfg
        self.stores = stores
        self.events = events
        self.watch = KeyWatch(stores)
        self.pillar_prune = PillarPrune(PillarCache(cfg.cachedir))
        self._last_purge = self._last_nonce_purge = self._last_trim = float("-inf")
        self._trim_every = TRIM_INTERVAL

    async def tick(self) -> None:
        """One round; a store fault is logged (rate-limited) and the next round tries again."""
        try:
            await self._tick()
        except (StoreError, OSError) as exc:
            fault_log(str(exc))

    async def _tick(self) -> None:
        cfg = self.cfg
        for gap in await self.stores.jobs.check():
            await self._fire(JobCacheEvent("lost", gap))
        if await self.watch.check():
            await self._rotated("key removed")
        for gone in await self.pillar_prune.check(self.stores.keys):
            log.info("removed the cached pillar of %s: its key is no longer accepted", gone)
        session = await self.stores.session.current()
        if cfg.publish_key_rotate_hours > 0 and time.time() - session.created > cfg.publish_key_rotate_hours * 3600:
            await self.stores.session.rotate()
            await self.watch.check()
            await self._rotated("schedule")
        if time.monotonic() - self._last_nonce_purge > cfg.auth_window_seconds:
            self._last_nonce_purge = time.monotonic()
            await self.stores.replay.forget(time.time() - 2 * cfg.auth_window_seconds)
        if time.monotonic() - self._last_purge > PURGE_INTERVAL:
            self._last_purge = time.monotonic()
            if cfg.keep_jobs_hours > 0:
                removed = await self.stores.jobs.purge(new_jid(time.time() - cfg.keep_jobs_hours * 3600))
                if removed:
                    log.info("job cache: removed %d jobs older than %gh", removed, cfg.keep_jobs_hours)
        if time.monotonic() - self._last_trim > self._trim_every:
            self._last_trim = time.monotonic()
            await self.stores.jobs.expire_probes(time.time() - PROBE_KEEP_SECONDS)
            if cfg.job_cache_max_mb > 0:
                await self._trim(int(cfg.job_cache_max_mb * 2**20))
            self._trim_every = max(TRIM_INTERVAL, TRIM_COST_FACTOR * (time.monotonic() - self._last_trim))

    async def _trim(self, max_bytes: int) -> None:
        trimmed = await self.stores.jobs.trim(max_bytes)
        if trimmed is not None:
            message = (f"job cache: {trimmed.used / 2**20:.1f} MiB is over job_cache_max_mb="
                       f"{self.cfg.job_cache_max_mb:g}: removed the {trimmed.removed} oldest job(s), those before "
                       f"{trimmed.first_kept}")
            log.warning("%s", message)
            await self._fire(JobCacheEvent("trimmed", message))

    async def _rotated(self, reason: str) -> None:
        serial = (await self.stores.session.current()).serial
        log.info("session key rotated (%s): serial %d", reason, serial)
        await self._fire(KeyRotateEvent(serial, reason))

    async def _fire(self, event: Event) -> None:
        await self.events.fire(event.tag, event.to_wire())


async def run(cfg: MasterConfig) -> None:
    transport = open_transport()
    stores = open_stores(store_config(cfg))
    events = transport.event_sink(ipc_url(cfg.event_pull_ipc))
    work = Maintenance(cfg, stores, events)
    try:
        while True:
            await work.tick()
            await asyncio.sleep(WATCH_INTERVAL)
    finally:
        events.close()
        stores.close()
        transport.close()


def main(cfg: MasterConfig) -> None:
    asyncio.run(run(cfg))
