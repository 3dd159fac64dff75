"""The master's pillar cache on real files: modes (secrets at rest), and the maintenance prune that removes the
pillar of a minion whose key is deleted or rejected (real key store)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from rx.master.pillar.cache import PillarCache, PillarPrune
from rx.transport.crypto import Identity


async def test_files_are_private(tmp_path):
    cache = PillarCache(tmp_path)
    await cache.store("m1", {"db": {"password": "x"}})
    assert await cache.get("m1") == {"db": {"password": "x"}} and await cache.get("m2") is None
    assert stat.S_IMODE((tmp_path / "pillar").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "pillar" / "m1").stat().st_mode) == 0o600
    assert await cache.get_many(["m1", "m2", "../grains"]) == {"m1": {"db": {"password": "x"}}, "m2": None,
                                                               "../grains": None}


async def test_prune_follows_the_accepted_keys(stores, tmp_path):
    cache = PillarCache(tmp_path / "cache")
    prune = PillarPrune(cache)
    keys = stores.keys
    for mid in ("m1", "m2", "m3"):
        await keys.write("accepted", mid, Identity.generate().public)
        await cache.store(mid, {"id": mid})
    assert await prune.check(keys) == []
    await keys.remove("accepted", "m2")                                  # rx-key -d m2
    info = next(k for k in await keys.find("m3") if k.state == "accepted")
    await keys.move(info, "rejected")                                    # rx-key -r m3
    assert await prune.check(keys) == ["m2", "m3"]
    assert sorted(os.listdir(Path(cache.root))) == ["m1"]
    assert await prune.check(keys) == []                                 # nothing changed since
