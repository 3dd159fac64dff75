"""Execution modules.  `MODULES` is the allow-list: only these files, and in each only the
names in its `__all__`, can be called from a job.

`MODULES` maps each file (`rx/modules/<file>.py`) to the module name it serves.  Several files
may serve one name (`pkg` by apt, dnf or apk): each may define `__virtual__()` (taking `ctx` or
nothing) returning True, False, or `(False, "why")`; the first file listed whose `__virtual__`
says yes serves the name, and the reasons of the others are kept for `sys.list_unavailable`/`sys.doc`.
Only the files of a name that is called are imported.  Modules also come from outside this
package (`module_dirs`, the synced `<cachedir>/extmods/modules`, installed packages' `rx.modules`
entry points): see `rx.minion.loader`.  `ALIASES` maps a name users know from Salt to rx's own.

A function gets its arguments from the job.  What it needs of the minion (id, grains, config,
the job, the function registry) it receives explicitly: a function whose first parameter is
named `ctx` is called with an `ExecContext` there (users never pass it; `sys.argspec` hides it).
To fail with a specific exit status it returns `Result(value, retcode)` or raises `CommandError`.
"""

from __future__ import annotations

import contextlib
import inspect
import os
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Callable, Iterator, Mapping, Protocol

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
    "cp": "cp",
}
ALIASES: dict[str, str] = {
    "saltutil": "rxutil",
}
"""Module names that call another module's functions (Salt's name -> rx's)."""
INLINE: frozenset[str] = frozenset({
    "test.ping", "test.true", "test.false", "test.echo", "test.version", "test.arg", "test.arg_type",
    "test.kwarg", "test.outputter", "test.retcode", "test.exception",
    "grains.items", "grains.item", "grains.get", "grains.ls", "grains.has_value", "grains.equals",
    "grains.filter_by",
    "pillar.items", "pillar.data", "pillar.item", "pillar.raw", "pillar.get", "pillar.fetch", "pillar.keys",
    "pillar.ls", "pillar.filter_by",
})
"""Functions the minion runs in its own process, without forking a job process, when the file serving
them is rx's own (not a module_dirs, synced or entry-point file of the same name).  Each returns at once
from the job's arguments and the minion's state (grains, pillar), blocks on nothing and changes nothing,
so the fork (most of a test.ping's CPU on the minion) buys no isolation.  A job of several functions
always forks."""
CONTEXT_PARAM = "ctx"


@dataclass(frozen=True)
class Result:
    """A return value with an explicit retcode (0 = success)."""

    value: Any
    retcode: int = 0


class CommandError(Exception):
    """A module function failed in a way it understands: the message is the return, retcode 1."""


class FunctionIndex(Protocol):
    """What `sys.*` and `test.provider` may ask of the minion's function registry."""

    def functions(self) -> list[str]:
        """Every callable `module.function` available here (built-ins and aliases included), sorted."""

    def doc(self, fun: str) -> str:
        """The documentation of one callable function."""

    def function(self, fun: str) -> Callable:
        """The callable as users call it (see `user_signature`)."""

    def modules(self) -> list[str]:
        """The names of the modules available here, sorted."""

    def unavailable(self) -> dict[str, str]:
        """Module names rx knows that are unavailable here, with why."""

    def provider(self, name: str) -> str:
        """The file (base name, no extension) serving module `name`; "" if none does."""


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

    files: Any = None
    """the minion's file client (`rx.minion.fileclient.FileClient`: the master's file server, cached by
    hash), in a job run by the minion; None where there is no master to ask"""


def user_signature(func: Callable) -> inspect.Signature:
    """`func`'s signature as callers see it: without the `ctx` the minion passes."""
    sig = inspect.signature(func)
    params = list(sig.parameters.values())
    if params and params[0].name == CONTEXT_PARAM:
        sig = sig.replace(parameters=params[1:])
    return sig


class _Shown(str):
    """An annotation shown as written (`text: str`, not `text: 'str'`)."""

    def __repr__(self) -> str:
        return str(self)


def signature_text(func: Callable) -> str:
    """`func`'s parameters and return type as callers see them: `(text: str) -> str`."""
    def shown(annotation: Any) -> Any:
        if annotation is inspect.Parameter.empty:
            return annotation
        return _Shown(annotation if isinstance(annotation, str) else inspect.formatannotation(annotation))
    sig = user_signature(func)
    params = [p.replace(annotation=shown(p.annotation)) for p in sig.parameters.values()]
    return str(sig.replace(parameters=params, return_annotation=shown(sig.return_annotation)))


def takes_context(func: Callable) -> bool:
    """True if `func`'s first parameter is `ctx` (it wants the ExecContext)."""
    try:
        params = list(inspect.signature(func).parameters)
    except (TypeError, ValueError):
        return False
    return bool(params) and params[0] == CONTEXT_PARAM


@contextlib.contextmanager
def replacing(dest: str, makedirs: bool = False) -> Iterator[BinaryIO]:
    """A new file beside `dest` (mode from the umask), moved onto `dest` when the block ends without an
    error and removed otherwise, so `dest` is never half written.  CommandError if `dest`'s directory is
    missing and not `makedirs`."""
    parent = os.path.dirname(dest) or "."
    if not os.path.isdir(parent):
        if not makedirs:
            raise CommandError(f"{parent} does not exist (makedirs=True creates it)")
        os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".{os.path.basename(dest)}.{os.getpid()}.rxpart")
    try:
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o666), "wb") as f:
            yield f
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
