"""The minion's function registry: built-ins of the minion process (job table, grains refresh)
and execution-module functions alike, resolved only through allow-lists.

Module functions run in a job's child process and are resolved from `rx.modules.MODULES`
(only names in each module's `__all__`); built-ins run in the minion process itself, because
they act on its state.  Each call gets an explicit `ExecContext`.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Awaitable, Callable

from rx.minion.pillar import refresh_pillar
from rx.modules import MODULES, ExecContext, takes_context
from rx.transport.ids import FUN_RE

Builtin = Callable[..., Awaitable[Any]]


class UnknownFunction(Exception):
    def __init__(self, fun: str, why: str) -> None:
        super().__init__(f"'{fun}' is not available: {why}")
        self.fun = fun


@dataclass(frozen=True)
class BuiltinSpec:
    name: str
    doc: str


BUILTINS = (
    BuiltinSpec("jobs.running", "Return the jobs running on this minion: jid, fun, pid, start time.\n\n"
                                "CLI example: rx '*' jobs.running"),
    BuiltinSpec("jobs.find", "Return the running job with this jid ({} if it is not running).\n\n"
                             "CLI example: rx '*' jobs.find 20261122051020123456"),
    BuiltinSpec("jobs.kill", "Send SIGTERM to the job with this jid (and its process group); True if it was "
                             "running.\n\nCLI example: rx '*' jobs.kill 20261122051020123456"),
    BuiltinSpec("grains.refresh", "Recompute the grains (core facts and the minion config's static grains) and "
                                  "send them to the master's grains cache, for targeting.\n\n"
                                  "CLI example: rx '*' grains.refresh"),
    *(BuiltinSpec(f"{m}.refresh_pillar", inspect.cleandoc(refresh_pillar.__doc__ or ""))
      for m in ("saltutil", "rxutil")),
)
BUILTIN_NAMES = frozenset(b.name for b in BUILTINS)


class Registry:
    """Resolves `module.function` names; built-in handlers are attached by the minion process."""

    _cache: dict[str, ModuleType] = {}
    _unavailable: dict[str, str] = {}

    def __init__(self) -> None:
        self._builtins: dict[str, Builtin] = {}

    def attach(self, name: str, handler: Builtin) -> None:
        """Give a built-in its handler (the minion process does this for each of BUILTINS)."""
        if name not in BUILTIN_NAMES:
            raise ValueError(f"{name} is not a built-in")
        self._builtins[name] = handler

    def builtin(self, fun: Any) -> Builtin | None:
        """The handler if `fun` is a built-in of this process (run inline, not in a job process)."""
        return self._builtins.get(fun) if isinstance(fun, str) else None

    def module(self, name: str) -> ModuleType:
        """The file serving module `name` (imported once); UnknownFunction with the reason if none does."""
        mod = self._cache.get(name)
        if mod is not None:
            return mod
        files = [f for f, served in MODULES.items() if served == name]
        if not files:
            raise UnknownFunction(name, f"no module {name!r}")
        reasons = []
        for file in files:
            available, why = _load(file)
            if isinstance(available, ModuleType):
                self._cache[name] = available
                return available
            reasons.append(why)
        self._unavailable[name] = "; ".join(reasons)
        raise UnknownFunction(name, f"module {name!r} is unavailable here: {self._unavailable[name]}")

    def preload(self) -> None:
        """Import every module now (before the minion forks jobs), keeping why any is unavailable."""
        for name in self.modules():
            try:
                self.module(name)
            except UnknownFunction:
                pass

    def resolve(self, fun: Any) -> Callable:
        """The module function for `fun`; UnknownFunction unless it is allow-listed."""
        if not isinstance(fun, str) or not FUN_RE.match(fun):
            raise UnknownFunction(str(fun), "function names are 'module.function'")
        mod_name, func_name = fun.split(".", 1)
        try:
            mod = self.module(mod_name)
        except UnknownFunction as exc:
            raise UnknownFunction(fun, str(exc).split(": ", 1)[1]) from None
        if func_name not in getattr(mod, "__all__", ()):
            raise UnknownFunction(fun, f"module {mod_name!r} has no function {func_name!r}")
        return getattr(mod, func_name)

    def doc(self, fun: str) -> str:
        for spec in BUILTINS:
            if spec.name == fun:
                return spec.doc
        return inspect.cleandoc(self.resolve(fun).__doc__ or "")

    def functions(self) -> list[str]:
        """Every callable `module.function` of the modules available here, built-ins included."""
        names = set(BUILTIN_NAMES)
        for m in self.modules():
            try:
                names.update(f"{m}.{f}" for f in self.module(m).__all__)
            except UnknownFunction:
                pass
        return sorted(names)

    def modules(self) -> list[str]:
        """The module names rx knows (available here or not)."""
        return sorted(set(MODULES.values()))

    def unavailable(self) -> dict[str, str]:
        """Module names found unavailable so far, with why."""
        return dict(self._unavailable)


def _load(file: str) -> tuple[ModuleType | None, str]:
    """Import `rx.modules.<file>` and ask its `__virtual__`: (module, "") or (None, why not)."""
    try:
        mod = importlib.import_module(f"rx.modules.{file}")
    except Exception as exc:  # a module that cannot import is unavailable, the rest keep working
        return None, f"{file}: cannot import: {type(exc).__name__}: {exc}"
    virtual = getattr(mod, "__virtual__", None)
    if virtual is None:
        return mod, ""
    try:
        verdict = virtual(ExecContext()) if takes_context(virtual) else virtual()
    except Exception as exc:
        return None, f"{file}: __virtual__ failed: {type(exc).__name__}: {exc}"
    if isinstance(verdict, tuple):
        ok, why = (verdict + ("",))[:2]
        return (mod, "") if ok else (None, f"{file}: {why or 'not available on this host'}")
    return (mod, "") if verdict else (None, f"{file}: not available on this host")
