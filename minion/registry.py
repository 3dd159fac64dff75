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

from rx.modules import MODULES
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
)
BUILTIN_NAMES = frozenset(b.name for b in BUILTINS)


class Registry:
    """Resolves `module.function` names; built-in handlers are attached by the minion process."""

    _cache: dict[str, ModuleType] = {}

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
        if name not in MODULES:
            raise UnknownFunction(name, f"no module {name!r}")
        mod = self._cache.get(name)
        if mod is None:
            mod = importlib.import_module(f"rx.modules.{name}")
            self._cache[name] = mod
        return mod

    def preload(self) -> None:
        for name in MODULES:
            self.module(name)

    def resolve(self, fun: Any) -> Callable:
        """The module function for `fun`; UnknownFunction unless it is allow-listed."""
        if not isinstance(fun, str) or not FUN_RE.match(fun):
            raise UnknownFunction(str(fun), "function names are 'module.function'")
        mod_name, func_name = fun.split(".", 1)
        if mod_name not in MODULES:
            raise UnknownFunction(fun, f"no module {mod_name!r}")
        mod = self.module(mod_name)
        if func_name not in getattr(mod, "__all__", ()):
            raise UnknownFunction(fun, f"module {mod_name!r} has no function {func_name!r}")
        return getattr(mod, func_name)

    def doc(self, fun: str) -> str:
        for spec in BUILTINS:
            if spec.name == fun:
                return spec.doc
        return inspect.cleandoc(self.resolve(fun).__doc__ or "")

    def functions(self) -> list[str]:
        names = [f"{m}.{f}" for m in MODULES for f in self.module(m).__all__]
        return sorted(set(names) | BUILTIN_NAMES)

    def modules(self) -> list[str]:
        return sorted(MODULES)
