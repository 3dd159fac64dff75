"""Publisher process: signed, sealed jobs from the MWorkers (publish_pull.ipc) out to the minions
(publish_port), each under its topic; subscribers that ask for anything else are dropped.  It also
keeps the presence table (who is connected now, rx.transport.presence) and reports it to the
presence store."""

from __future__ import annotations

import asyncio
import logging

from rx.config import MasterConfig
from rx.logsetup import RateLimitedLog
from rx.master.store import StoreError, open_stores, store_config
from rx.master.store.presence import open_presence
from rx.transport.presence import Claim
from rx.transport.roles import devices, ipc_url, tcp_url

log = logging.getLogger("rx.master.publisher")
_drops = RateLimitedLog(log)
VERIFIED_MAX = 200_000
"""Claims remembered as verified (a reconnect storm checks each once); past it the memory starts over."""


class Presence:
    """The publisher's presence sink: claims are checked with the session secret (a claim of any serial
    under it is good: presence outlives key rotations), reports go to the presence store."""

    def __init__(self, cfg: MasterConfig) -> None:
        self.loop = asyncio.new_event_loop()
        self.stores = open_stores(store_config(cfg))
        self.store = open_presence(cfg.sock_dir)
        self._secret = b""
        self._verified: set[Claim] = set()

    def verify(self, claim: Claim) -> bool:
        try:
            secret = self.loop.run_until_complete(self.stores.session.current()).secret
        except StoreError as exc:
            _drops(logging.ERROR, "cannot check presence claims: %s", exc)
            return False
        if secret != self._secret or len(self._verified) >= VERIFIED_MAX:
            self._secret, self._verified = secret, set()
        if claim in self._verified:
            return True
        if claim.verify(secret):
            self._verified.add(claim)
            return True
        return False

    def publish(self, minions: dict[str, dict]) -> None:
        try:
            self.loop.run_until_complete(self.store.publish(minions))
        except OSError as exc:
            _drops(logging.ERROR, "cannot write the presence report: %s", exc)


def main(cfg: MasterConfig) -> None:
    devices().publish_fanout(ipc_url(cfg.publish_pull_ipc), tcp_url(cfg.interface, cfg.publish_port),
                             lambda fmt, *args: _drops(logging.WARNING, fmt, *args), Presence(cfg))
