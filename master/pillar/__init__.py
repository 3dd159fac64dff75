"""Pillar: per-minion data (and secrets) compiled on the master from `pillar_roots` and sent to that
minion only.

`sources` finds files in the roots (contained), `render` turns one into data (Jinja, sandboxed, then
YAML), `compile` applies the top files, includes and merging, `ext` the `rx.pillar` entry points,
`cache` keeps each minion's last compiled pillar (for `I@`/`J@` targets), `handler` answers a minion's
sealed `_pillar` request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rx.master.pillar.cache import PillarCache
from rx.master.pillar.compile import Compiler, PillarSettings
from rx.master.pillar.sources import PillarError

__all__ = ["Compiler", "PillarCache", "PillarError", "PillarService", "PillarSettings", "pillar_service"]


@dataclass
class PillarService:
    """What a worker compiles pillars with, and where it keeps them."""

    compiler: Compiler
    cache: PillarCache


def pillar_service(cfg: Any) -> PillarService:
    """The pillar service of a master config."""
    settings = PillarSettings(roots=cfg.pillar_roots, strategy=cfg.pillar_source_merging_strategy,
                              merge_lists=cfg.pillar_merge_lists, nodegroups=cfg.nodegroups)
    return PillarService(Compiler(settings), PillarCache(cfg.cachedir))
