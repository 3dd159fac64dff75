"""The local grains store: one msgpack file per minion under `<cachedir>/grains`, written when a
minion starts or refreshes its grains, read when a target needs grains to compute the expected
minions (re-read only when the file changed)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from rx.master.store.base import StoreError
from rx.transport.codec import DecodeError, decode, encode
from rx.transport.ids import validate_minion_id


class FileGrainsStore:
    def __init__(self, cachedir: str | Path) -> None:
        self.root = Path(cachedir) / "grains"
        self._mem: dict[str, tuple[int, dict]] = {}

    async def store(self, minion_id: str, grains: dict[str, Any]) -> None:
        """Replace the minion's file, unless it already holds these grains (a minion's restart, or every
        minion's after the master's: reading is far cheaper than creating and renaming a file)."""
        if validate_minion_id(minion_id):
            raise StoreError(f"bad minion id {minion_id!r}")
        data = encode(grains)
        path = os.path.join(self.root, minion_id)
        try:
            with open(path, "rb") as f:
                if f.read(len(data) + 1) == data:
                    return
        except OSError:
            pass  # none yet (or unreadable): written below
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = os.path.join(self.root, f".tmp.{os.getpid()}.{os.urandom(6).hex()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)

    def _get(self, minion_id: str) -> dict | None:
        if validate_minion_id(minion_id):
            return None
        path = self.root / minion_id
        try:
            mtime = path.stat().st_mtime_ns
        except (FileNotFoundError, NotADirectoryError):
            self._mem.pop(minion_id, None)
            return None
        hit = self._mem.get(minion_id)
        if hit is not None and hit[0] == mtime:
            return hit[1]
        try:
            grains = decode(path.read_bytes())
        except (OSError, DecodeError):
            return None
        if not isinstance(grains, dict):
            return None
        self._mem[minion_id] = (mtime, grains)
        return grains

    async def get(self, minion_id: str) -> dict | None:
        return self._get(minion_id)

    async def get_many(self, ids: list[str]) -> dict[str, dict | None]:
        return await asyncio.to_thread(lambda: {i: self._get(i) for i in ids})

    async def remove(self, minion_id: str) -> None:
        if validate_minion_id(minion_id):
            return
        try:
            (self.root / minion_id).unlink()
        except FileNotFoundError:
            pass
