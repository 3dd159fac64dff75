"""Resolve `module.function` names against the allow-list in rx.modules."""

from __future__ import annotations

import importlib
import inspect
from types import ModuleType
from typing import Callable

from rx.modules import MODULES
from rx.transport.ids import FUN_RE

INLINE_DOCS = {
    "jobs.running": "Return the jobs running on this minion: jid, fun, pid, start time.\n\n"
                    "CLI example: rx '*' jobs.running",
    "jobs.find": "Return the running job with this jid ({} if it is not running).\n\n"
                 "CLI example: rx '*' jobs.find 20261122051020123456",
    "jobs.kill": "Send SIGTERM to the job with this jid (and its process group); True if it was running.\n\n"
                 "CLI example: rx '*' jobs.kill 20261122051020123456",
    "grains.refresh": "Recompute the grains (core facts and the minion config's static grains) and send them to "
                      "the master's grains cache, for targeting.\n\nCLI example: rx '*' grains.refresh",
}
INLINE_FUNCTIONS = tuple(INLINE_DOCS)
"""Functions of the minion process itself (job table, grains), run without a child process."""


class UnknownFunction(Exception):
    def __init__(self, fun: str, why: str) -> None:
        super().__init__(f"'{fun}' is not available: {why}")
        self.fun = fun


class Loader:
    """Loads the allow-listed modules once; resolves only names in a module's `__all__`."""

    _cache: dict[str, ModuleType] = {}

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

    def resolve(self, fun: str) -> Callable:
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
        if fun in INLINE_DOCS:
            return INLINE_DOCS[fun]
        return inspect.cleandoc(self.resolve(fun).__doc__ or "")

    def functions(self) -> list[str]:
        names = [f"{m}.{f}" for m in MODULES for f in self.module(m).__all__]
        return sorted(set(names) | set(INLINE_FUNCTIONS))
