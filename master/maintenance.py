"""Maintenance process: key-change watch, publish-key rotation, job-cache retention.

A minion key removed from `accepted` (by rx-key or by hand) rotates the session
serial unless a rotation already followed it, so a deleted or rejected minion
can neither read later publications nor return.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time

import zmq.asyncio

from rx.config import MasterConfig
from rx.master.jobcache import JobCache
from rx.master.keys import KeyStore
from rx.master.session import SessionState
from rx.transport.channels import EventBus

log = logging.getLogger(__name__)

WATCH_INTERVAL = 0.5
PURGE_INTERVAL = 3600.0


class KeyWatch:
    """Notices accepted keys disappearing and rotates when nobody else has."""

    def __init__(self, keys: KeyStore, session: SessionState) -> None:
        self.keys = keys
        self.session = session
        self._stamp = -1
        self._ids = set(keys.ids("accepted"))
        self._serial = session.serial

    def check(self) -> bool:
        """Returns True if it rotated."""
        self.session.refresh()
        try:
            stamp = os.stat(self.keys.dirs["accepted"]).st_mtime_ns
        except FileNotFoundError:
            return False
        if stamp == self._stamp:
            self._serial = self.session.serial
            return False
        self._stamp = stamp
        ids = set(self.keys.ids("accepted"))
        removed = self._ids - ids
        self._ids = ids
        rotated = False
        if removed and self.session.serial == self._serial:
            self.session.rotate()
            log.info("accepted key(s) removed (%s): session key rotated to serial %d",
                     ", ".join(sorted(removed)[:5]), self.session.serial)
            rotated = True
        self._serial = self.session.serial
        return rotated


async def run(cfg: MasterConfig) -> None:
    zctx = zmq.asyncio.Context()
    events = EventBus(zctx, cfg.event_pull_ipc)
    keys = KeyStore(cfg.pki_dir)
    session = SessionState(cfg.pki_dir)
    session.refresh(force=True)
    jobs = JobCache(cfg.jobs_dir)
    watch = KeyWatch(keys, session)
    last_purge = last_nonce_purge = 0.0
    try:
        while True:
            if watch.check():
                await events.fire("rx/key/rotate", {"serial": session.serial, "reason": "key removed"})
            age = time.time() - session.path.stat().st_mtime
            if cfg.publish_key_rotate_hours > 0 and age > cfg.publish_key_rotate_hours * 3600:
                session.rotate()
                watch.check()
                log.info("scheduled session key rotation: serial %d", session.serial)
                await events.fire("rx/key/rotate", {"serial": session.serial, "reason": "schedule"})
            if time.monotonic() - last_nonce_purge > cfg.auth_window_seconds:
                last_nonce_purge = time.monotonic()
                jobs.forget_nonces(time.time() - 2 * cfg.auth_window_seconds)
            if time.monotonic() - last_purge > PURGE_INTERVAL:
                last_purge = time.monotonic()
                removed = await asyncio.to_thread(jobs.purge, cfg.keep_jobs_hours)
                if removed:
                    log.info("job cache: removed %d jobs older than %gh", removed, cfg.keep_jobs_hours)
            await asyncio.sleep(WATCH_INTERVAL)
    finally:
        events.close()
        zctx.term()


def main(cfg: MasterConfig) -> None:
    asyncio.run(run(cfg))
