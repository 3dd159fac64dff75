"""Publisher process: signed, sealed jobs from the MWorkers (publish_pull.ipc) out to the minions
(publish_port), each under its topic; subscribers that ask for anything else are dropped.  It also
keeps the presence table (who is connected now, rx.transport.presence) and reports it to the
presence store."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from rx.config import MasterConfig
from rx.logsetup import RateLimitedLog
from rx.master.store import StoreError, open_stores, store_config
from rx.master.store.presence import open_presence
from rx.transport.presence import Claim, id_tag
from rx.transport.roles import devices, ipc_url, tcp_url

log = logging.getLogger("rx.master.publisher")
_drops = RateLimitedLog(log)
RELIST_SECONDS = 1.0
"""An unknown claim has the accepted keys listed again if they changed, or at most this often (a change
within the file system's timestamp granularity is not seen as one)."""
LEFT_MAX = 200_000
"""Minions whose last-seen time the report keeps; past it the oldest are forgotten."""
VERIFIED_MAX = 200_000
"""Claims remembered as verified (a reconnect storm checks each once); past it the memory starts over."""


class Presence:
    """The publisher's presence sink: a claim names its minion by a tag, found among the accepted keys
    (re-read when they change), and is checked with the session secret (a claim of any serial under it is
    good: presence outlives key rotations); reports go to the presence store."""

    def __init__(self, cfg: MasterConfig) -> None:
        self.loop = asyncio.new_event_loop()
        self.stores = open_stores(store_config(cfg))
        self.store = open_presence(cfg.sock_dir)
        self._secret = b""
        self._verified: dict[Claim, str] = {}
        self._ids: dict[bytes, str] = {}
        self._version: object = None
        self._listed = 0.0
        self._left = self._previous()
        self._shown: set[str] = set()

    def _previous(self) -> dict[str, float]:
        """Last-seen times from the report a previous publisher left: its connected minions were last seen
        when it last wrote (a restarted master keeps telling when each minion was last connected)."""
        try:
            old = self._run(self.store.read())
        except (StoreError, OSError):
            return {}
        if old is None:
            return {}
        return {**old.left, **{m: old.updated for m in old.minions}}

    def _run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def _minion(self, tag: bytes) -> str | None:
        """The accepted minion whose id has this tag (the accepted keys are listed again when they changed)."""
        minion_id = self._ids.get(tag)
        if minion_id is None:
            version = self._run(self.stores.keys.accepted_version())
            if version != self._version or time.monotonic() - self._listed >= RELIST_SECONDS:
                self._ids = {id_tag(i): i for i in self._run(self.stores.keys.ids("accepted"))}
                self._version, self._listed = version, time.monotonic()
                minion_id = self._ids.get(tag)
        return minion_id

    def verify(self, claim: Claim) -> str | None:
        try:
            secret = self._run(self.stores.session.current()).secret
            minion_id = self._minion(claim.tag)
        except (StoreError, OSError) as exc:
            _drops(logging.ERROR, "cannot check presence claims: %s", exc)
            return None
        if secret != self._secret or len(self._verified) >= VERIFIED_MAX:
            self._secret, self._verified = secret, {}
        if minion_id is None:
            return None
        if self._verified.get(claim) == minion_id:
            return minion_id
        if claim.verify(secret, minion_id):
            self._verified[claim] = minion_id
            return minion_id
        return None

    def publish(self, minions: dict[str, dict]) -> None:
        now = time.time()
        for gone in self._shown - minions.keys():
            self._left[gone] = now
        for here in minions:
            self._left.pop(here, None)
        if len(self._left) > LEFT_MAX:
            self._left = dict(sorted(self._left.items(), key=lambda kv: kv[1])[-LEFT_MAX:])
        self._shown = set(minions)
        try:
            self._run(self.store.publish(minions, self._left))
        except OSError as exc:
            _drops(logging.ERROR, "cannot write the presence report: %s", exc)


def main(cfg: MasterConfig) -> None:
    devices().publish_fanout(ipc_url(cfg.publish_pull_ipc), tcp_url(cfg.interface, cfg.publish_port),
                             lambda fmt, *args: _drops(logging.WARNING, fmt, *args), Presence(cfg), cfg.zmq_backlog)
