"""Execution modules.  `MODULES` is the allow-list: only these modules, and in
each only the names in its `__all__`, can be called from a job.

A function gets its arguments from the job; what it needs of the minion (id,
grains, config) it reads from `context()`.  To fail with a specific exit status
it returns `Result(value, retcode)` or raises `CommandError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

MODULES = ("test", "cmd", "grains", "sys")


@dataclass(frozen=True)
class Result:
    """A return value with an explicit retcode (0 = success)."""

    value: Any
    retcode: int = 0


class CommandError(Exception):
    """A module function failed in a way it understands: the message is the return, retcode 1."""


@dataclass(frozen=True)
class ModuleContext:
    minion_id: str = ""
    grains: Mapping[str, Any] = field(default_factory=dict)


_context = ModuleContext()


def context() -> ModuleContext:
    return _context


def set_context(ctx: ModuleContext) -> None:
    global _context
    _context = ctx
