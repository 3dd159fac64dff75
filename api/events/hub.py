"""The event hub: ONE subscription to the master's bus (rx.master.services.events) shared by every client
of rx-api's /events and WebSocket feed, over rx.api.events.core's ids, replay window and queues.

The bus is IPC in the master's sock_dir.  The hub follows it: when the master stops or restarts (its
pidfile's process changes, or the bus socket is replaced: the event publisher restarted), the hub closes
its subscription, tells every client (`rx/api/bus` with `state: lost`), subscribes again as soon as the
bus answers and tells them again (`state: back`): events fired in between were missed.  Nothing the bus
does ends rx-api: a failure of the loop is logged and the loop starts again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any, Callable

from rx.api.events.core import BUS_TAG, Access, HubCore
from rx.client.masterwatch import MasterWatch
from rx.master.services.auth import Principal
from rx.master.services.events import EventService, MasterNotRunning

log = logging.getLogger("rx.api.events")

BATCH_WAIT = 0.5
"""Seconds the loop waits for events before it checks the master is still the one it subscribed to."""
RETRY_SECONDS = 1.0
"""Seconds between attempts to subscribe while the bus is down."""
SUBSCRIBE_TIMEOUT = 5.0
TOKEN_RECHECK = 60.0
"""Seconds between checks that a stream's token is still valid (expired or revoked: the stream ends)."""


class EventHub(HubCore):
    """Start it in rx-api's event loop (`await hub.start()`), stop it there (`await hub.stop()`)."""

    def __init__(self, events: EventService, *, sees_all_jobs: Callable[[Principal], bool], pidfile: str = "",
                 keepalive: float = 15.0, token_recheck: float = TOKEN_RECHECK, auth: Any = None,
                 **core: Any) -> None:
        """`auth`: what writes the audit log (rx.master.services.auth.AuthService.audit), None for none."""
        super().__init__(**core)
        self.events = events
        self.auth = auth
        self.pidfile = pidfile
        self.keepalive = keepalive
        self.token_recheck = token_recheck
        self._sees_all_jobs = sees_all_jobs
        self._task: asyncio.Task | None = None
        self._ever_up = False
        self._said_down = False

    def access(self, who: Principal) -> Access:
        """What this principal's streams may see (rx.api.events.core: Who sees what)."""
        return Access(who.root or self._sees_all_jobs(who), who.owner)

    async def start(self) -> None:
        """Begin following the bus (returns at once; the master need not be running yet)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="rx-api events")

    async def stop(self) -> None:
        """Stop following the bus and end every client's stream (they get `rx/api/closed`)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        for client in self.clients:
            client.end("rx-api is stopping")
        self.events.close()

    async def _run(self) -> None:
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("rx-api events: the bus loop failed; it starts again")
                self._lost("the bus loop failed (see rx-api's log)")
                await asyncio.sleep(RETRY_SECONDS)

    def _bus_file(self) -> tuple[int, int, int] | None:
        """The bus socket's identity: a new socket file (an event publisher restarted) may reuse the old one's
        inode number, never its creation time."""
        try:
            st = os.stat(self.events.pub_path)
        except OSError:
            return None
        return st.st_dev, st.st_ino, st.st_ctime_ns

    async def _follow(self) -> None:
        """One subscription, from its start to the bus going away."""
        ident = self._bus_file()
        watch = MasterWatch(self.pidfile) if self.pidfile else None
        if ident is None:
            return await self._wait_down("no event bus (is rx-master running?)")
        try:
            source = await self.events.subscribe(("",), timeout=SUBSCRIBE_TIMEOUT)
        except MasterNotRunning as exc:
            return await self._wait_down(str(exc))
        try:
            self._up()
            check_at = time.monotonic() + BATCH_WAIT
            while True:
                batch = await source.batch(BATCH_WAIT)
                if batch:
                    self.ingest(batch, time.time())
                if time.monotonic() >= check_at:
                    check_at = time.monotonic() + BATCH_WAIT
                    why = (watch.gone() if watch is not None else "") or (
                        "" if self._bus_file() == ident else "the master's event bus was replaced or removed")
                    if why:
                        break
        finally:
            source.close()
        self._lost(why)

    async def _wait_down(self, why: str) -> None:
        if not self._said_down:
            self._said_down = True
            log.warning("rx-api events: %s; retrying every %gs", why, RETRY_SECONDS)
        await asyncio.sleep(RETRY_SECONDS)

    def _up(self) -> None:
        was_down = self._ever_up or bool(self.clients)
        self.bus_up, self._ever_up, self._said_down = True, True, False
        log.info("rx-api events: subscribed to the master's event bus")
        if was_down:
            self.notice(BUS_TAG, {"state": "back", "message": "subscribed to the master's event bus again: events "
                                  "fired while it was away were missed"}, time.time())

    def _lost(self, why: str) -> None:
        if not self.bus_up:
            return
        self.bus_up = False
        self.counts["bus_lost"] += 1
        log.warning("rx-api events: lost the master's event bus: %s; resubscribing", why)
        self.notice(BUS_TAG, {"state": "lost", "message": f"{why}; rx-api resubscribes when it is back"}, time.time())


def sees_all_jobs_of(auth: Any) -> Callable[[Principal], bool]:
    """Whether a principal may see every job's events: its rights allow the `jobs.lookup_jid` runner, which
    reads any job's returns (auth: rx.master.services.auth.AuthService)."""
    from rx.acl import RUNNER

    def sees_all(who: Principal) -> bool:
        rights = auth.rights(who)
        return rights is None or rights.allows_spec(RUNNER, "jobs.lookup_jid")
    return sees_all
