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
