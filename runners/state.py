"""`state.event`: Salt's name for watching the master's event bus (see event.watch)."""

from __future__ import annotations

from typing import Any

from rx.runners import RunnerContext
from rx.runners import event as _event

__all__ = ["event"]


async def event(ctx: RunnerContext, tagmatch: str = "*", count: int = -1, quiet: bool = False,
                pretty: bool = False) -> Any:
    """Print the master's events whose tag matches a glob, one `tag<TAB>json` line each (event.watch).

    `count`: stop after that many (-1: until interrupted or -t seconds); `quiet`: print nothing, only
    wait; `pretty`: indent the JSON.

    CLI example: rx-run state.event pretty=True
    """
    return await _event.watch(ctx, tagmatch, count, quiet, pretty)
