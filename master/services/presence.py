"""Presence as a service: the minions connected to this master now (a verified presence claim on a
live publish connection, rx.transport.presence), from the report the publisher keeps in the presence
store.  Nothing is sent to any minion."""

from __future__ import annotations

from rx.master.services.events import MasterNotRunning
from rx.master.store.presence import PresenceStore, open_presence


class PresenceService:
    def __init__(self, sock_dir: str, store: PresenceStore | None = None) -> None:
        self.store = store or open_presence(sock_dir)

    async def connected(self) -> dict[str, dict]:
        """`{id: {"since", "addr", "connections"}}` of every minion connected now (any key state: callers
        keep the accepted ones); MasterNotRunning if no running master reports it."""
        report = await self.store.read()
        if report is None or not report.live:
            raise MasterNotRunning("the master is not running on this host, so no minion is connected to it "
                                   "(no live presence report); start it with: rx-master -d")
        return report.minions

    async def last_seen(self) -> dict[str, dict]:
        """`{id: {"up": bool, "since": time connected or None, "last_seen": time or None}}` of every minion the
        publisher has seen connected (up: now; down: when it was last connected, kept across master restarts);
        MasterNotRunning if no running master reports it."""
        report = await self.store.read()
        if report is None or not report.live:
            raise MasterNotRunning("the master is not running on this host, so it cannot tell when minions were "
                                   "last connected (no live presence report); start it with: rx-master -d")
        out = {m: {"up": False, "since": None, "last_seen": t} for m, t in report.left.items()}
        out.update({m: {"up": True, "since": info.get("since"), "last_seen": report.updated}
                    for m, info in report.minions.items()})
        return out
