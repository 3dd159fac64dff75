"""Execution modules.  `MODULES` is the allow-list: only these files, and in each only the
names in its `__all__`, can be called from a job.

`MODULES` maps each file (`rx/modules/<file>.py`) to the module name it serves.  Several files
may serve one name (`pkg` by apt, dnf or apk): each may define `__virtual__()` (taking `ctx` or
nothing) returning True, False, or `(False, "why")`; the first file listed whose `__virtual__`
says yes serves the name, and the reasons of the others are kept for `sys.list_modules`/`sys.doc`.
Only the files of a name that is called are imported.

A function gets its arguments from the job.  What it needs of the minion (id, grains, config,
the job, the function registry) it receives explicitly: a function whose first parameter is
named `ctx` is called with an `ExecContext` there (users never pass it; `sys.argspec` hides it).
To fail with a specific exit status it returns `Result(value, retcode)` or raises `CommandError`.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol

MODULES: dict[str, str] = {
    "test": "test",
    "cmd": "cmd",
    "grains": "grains",
    "sys": "sys",
    "status": "status",
    "disk": "disk",
    "network": "network",
    "ps": "ps",
    "file": "file",
    "archive": "archive",
    "cron": "cron",
    "timezone": "timezone",
    "system": "system",
    "config": "config",
    "pillar": "pillar",
    "event": "event",
    "aptpkg": "pkg",
    "dnfpkg": "pkg",
    "apkpkg": "pkg",
    "systemd_service": "service",
    "openrc_service": "service",
    "sysv_service": "service",
    "useradd": "user",
    "groupadd": "group",
}
CONTEXT_PARAM = "ctx"


@dataclass(frozen=True)
class Result:
    """A return value with an explicit retcode (0 = success)."""

    value: Any
    retcode: int = 0


class CommandError(Exception):
    """A module function failed in a way it understands: the message is the return, retcode 1."""


class FunctionIndex(Protocol):
    """What `sys.*` may ask of the minion's function registry."""

    def functions(self) -> list[str]: ...

    def doc(self, fun: str) -> str: ...

    def modules(self) -> list[str]: ...


@dataclass(frozen=True)
class ExecContext:
    """Everything a module function may know about where and why it runs."""

    minion_id: str = ""
    grains: Mapping[str, Any] = field(default_factory=dict)
    config: Any = None
    """the minion's config (a frozen MinionConfig), None under `rx-call --local` without one"""
    jid: str = ""
    fun: str = ""
    registry: FunctionIndex | None = None
    fire_event: Callable[[str, dict], None] | None = None
    """fires an event (tag, data) to the master, filed under rx/minion/<id>/<tag>: set in the job
    process of a running minion, None elsewhere (rx-call --local, tests)"""
    pillar: Mapping[str, Any] | None = None
    """the minion's pillar, held in its memory; None when it has none (`pillar_error` says why)"""
    pillar_error: str = ""
    """why the last pillar fetch failed ("" if it did not)"""


def takes_context(func: Callable) -> bool:
    """True if `func`'s first parameter is `ctx` (it wants the ExecContext)."""
    try:
        params = list(inspect.signature(func).parameters)
    except (TypeError, ValueError):
        return False
    return bool(params) and params[0] == CONTEXT_PARAM
