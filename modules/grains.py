"""Read the minion's grains: facts about the host, computed at start."""

from __future__ import annotations

from typing import Any

from rx.modules import ExecContext

__all__ = ["items", "item", "get", "ls"]


def items(ctx: ExecContext) -> dict:
    """Return all grains.

    CLI example: rx '*' grains.items
    """
    return dict(ctx.grains)


def item(ctx: ExecContext, *names: str) -> dict:
    """Return the named grains.

    CLI example: rx '*' grains.item os num_cpus
    """
    grains = ctx.grains
    return {n: grains.get(n) for n in names}


def get(ctx: ExecContext, key: str, default: Any = "", delimiter: str = ":") -> Any:
    """Return one grain; `a:b:c` reaches into nested values.

    CLI example: rx '*' grains.get os
    """
    value: Any = ctx.grains
    for part in key.split(delimiter):
        if isinstance(value, dict) and part in value:
            value = value[part]
        else:
            return default
    return value


def ls(ctx: ExecContext) -> list:
    """Return the names of all grains.

    CLI example: rx '*' grains.ls
    """
    return sorted(ctx.grains)
