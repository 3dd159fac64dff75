"""What the master has cached about its minions, read without asking them (Salt's `cache` runners): the
grains each accepted minion sent at its start and after every grains change."""

from __future__ import annotations

from typing import Any

from rx.runners import BadRequest, RunnerContext
from rx.targeting import MinionFacts, TargetError, compile_target, expand_nodegroups

__all__ = ["grains"]


async def grains(ctx: RunnerContext, tgt: Any, tgt_type: str = "glob") -> dict[str, Any]:
    """`{id: grains}` of the accepted minions the target matches, from the master's grains cache (a minion that
    never sent its grains is left out).  Pillar targets (`I@`, `J@`) are refused: the pillar cache is the
    master's own.

    CLI example: rx-run cache.grains 'web*'; rx-run cache.grains os:Debian tgt_type=grain
    """
    if not isinstance(tgt, (str, list)) or not tgt:
        raise BadRequest("cache.grains: give a target, e.g. cache.grains '*'")
    try:
        expr, kind = expand_nodegroups(tgt, str(tgt_type), ctx.cfg.nodegroups)
        target = compile_target(expr, kind, nodegroups=ctx.cfg.nodegroups)
    except TargetError as exc:
        raise BadRequest(f"cache.grains: {exc}") from None
    if target.uses_pillar:
        raise BadRequest("cache.grains: pillar targets (I@, J@) are not matched here; use rx-run manage.up "
                         "or a grain or id target")
    cached = {m.id: m.grains for m in await ctx.services().status.minions() if m.grains is not None}
    matched, _unknown = target.select(MinionFacts(mid, data) for mid, data in cached.items())
    return {mid: cached[mid] for mid in matched}
