"""The master's compiled pillars: one msgpack file per minion under `<cachedir>/pillar` (directory 0700,
files 0600), kept as the grains cache keeps grains.  A minion's file is written each time it is sent its
pillar, so it is always the pillar that minion holds (a failed compile leaves both as they were); pillar
targets (`I@`, `J@`) are decided from it.

Secrets at rest: these files hold pillars in clear, readable by the master's user only, as the
`pillar_roots` files they come from.  When a minion's key stops being accepted (deleted, rejected), the
maintenance process removes its file (`PillarPrune`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rx.master.store.file_grains import FileGrainsStore

PILLAR_DIR = "pillar"


class PillarCache(FileGrainsStore):
    """`store`, `get`, `get_many`, `remove` of FileGrainsStore, under `<cachedir>/pillar`."""

    def __init__(self, cachedir: str | Path) -> None:
        super().__init__(cachedir)
        self.root = Path(cachedir) / PILLAR_DIR


class PillarPrune:
    """Removes the cached pillar of each minion whose key is no longer accepted, when the accepted keys change."""

    def __init__(self, cache: PillarCache) -> None:
        self.cache = cache
        self._version: Any = object()

    async def check(self, keys: Any) -> list[str]:
        """The ids whose cached pillar it removed (`keys`: the key store)."""
        version = await keys.accepted_version()
        if version == self._version:
            return []
        self._version = version
        try:
            names = os.listdir(self.cache.root)
        except (FileNotFoundError, NotADirectoryError):
            return []
        accepted = set(await keys.ids("accepted"))
        gone = [n for n in names if not n.startswith(".") and n not in accepted and not await keys.is_accepted(n)]
        for name in gone:
            await self.cache.remove(name)
        return sorted(gone)
