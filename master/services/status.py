"""Minion status as a service: the accepted minions and what the master knows of them (grains
cached from their start and refresh events)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rx.master.store import Stores


@dataclass(frozen=True)
class MinionInfo:
    id: str
    grains: dict[str, Any] | None
    """None: the minion never sent its grains (it has not started since its key was accepted)"""


class StatusService:
    def __init__(self, stores: Stores) -> None:
        self.stores = stores

    async def minions(self) -> list[MinionInfo]:
        """Every accepted minion, sorted by id."""
        ids = await self.stores.keys.ids("accepted")
        grains = await self.stores.grains.get_many(ids)
        return [MinionInfo(i, grains.get(i)) for i in ids]

    async def grains(self, minion_id: str) -> dict[str, Any] | None:
        return await self.stores.grains.get(minion_id)
