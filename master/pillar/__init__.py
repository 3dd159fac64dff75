"""Pillar: per-minion data (and secrets) compiled on the master from `pillar_roots` and sent to that
minion only.

`sources` finds files in the roots (contained), `render` turns one into data (Jinja, sandboxed, then
YAML), `compile` applies the top files, includes and merging, `ext` the `rx.pillar` entry points,
`cache` keeps each minion's last compiled pillar (for `I@`/`J@` targets), `handler` answers a minion's
sealed `_pillar` request.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from rx.master.pillar.cache import PillarCache
from rx.master.pillar.compile import TOP, Compiler, PillarSettings
from rx.master.pillar.sources import PillarError

__all__ = ["Compiler", "PillarCache", "PillarError", "PillarService", "PillarSettings", "pillar_service"]


@dataclass
class PillarService:
    """What a worker compiles pillars with, and where it keeps them."""

    compiler: Compiler
    cache: PillarCache
    _configured: tuple[float, bool] = field(default=(float("-inf"), True))

    def configured(self, now: float | None = None) -> bool:
        """Whether this master has any pillar to give: a top file in some environment, or an external
        pillar.  Checked at most once a second: a master without pillar answers a cold start of 10,000
        minions with empty pillars, without compiling or caching 10,000 of them."""
        now = time.monotonic() if now is None else now
        checked, answer = self._configured
        if now - checked >= 1.0:
            roots = self.compiler.roots
            try:
                answer = bool(self.compiler.ext.hooks()) or any(roots.find(env, [TOP]) is not None
                                                                for env in roots.envs())
            except PillarError:  # a top file that is there but wrong: the compile says what is wrong with it
                answer = True
            self._configured = (now, answer)
        return answer


def pillar_service(cfg: Any) -> PillarService:
    """The pillar service of a master config."""
    settings = PillarSettings(roots=cfg.pillar_roots, strategy=cfg.pillar_source_merging_strategy,
                              merge_lists=cfg.pillar_merge_lists, nodegroups=cfg.nodegroups)
    return PillarService(Compiler(settings), PillarCache(cfg.cachedir))
