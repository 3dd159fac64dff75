"""Maintenance process: key-change watch, publish-key rotation, job-cache retention.

A minion key removed from `accepted` (by rx-key or by hand) rotates the session serial unless a
rotation already followed it, so a deleted or rejected minion can neither read later
publications nor return.
"""

from __future__ import annotations

import asyncio
import logging
import time

from rx.config import MasterConfig
from rx.master.store import Stores, open_stores, store_config
from rx.transport.events import KeyRotateEvent
from rx.transport.ids import new_jid
from rx.transport.roles import EventSink, ipc_url, open_transport

log = logging.getLogger(__name__)

WATCH_INTERVAL = 0.5
PURGE_INTERVAL = 3600.0


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
        self._last_purge = self._last_nonce_purge = float("-inf")

    async def tick(self) -> None:
        cfg = self.cfg
        if await self.watch.check():
            await self._rotated("key removed")
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

    async def _rotated(self, reason: str) -> None:
        serial = (await self.stores.session.current()).serial
        log.info("session key rotated (%s): serial %d", reason, serial)
        event = KeyRotateEvent(serial, reason)
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
