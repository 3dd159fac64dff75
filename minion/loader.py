"""Resolve `module.function` names against the allow-list in rx.modules."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Callable

from rx.modules import MODULES
from rx.transport.messages import FUN_RE

INLINE_MODULE = "jobs"
"""Functions of the minion process itself (job table), run without a child process."""


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
        mod = self.module(mod_name)
        if func_name not in getattr(mod, "__all__", ()):
            raise UnknownFunction(fun, f"module {mod_name!r} has no function {func_name!r}")
        return getattr(mod, func_name)

    def functions(self) -> list[str]:
        names = [f"{m}.{f}" for m in MODULES for f in self.module(m).__all__]
        names += [f"{INLINE_MODULE}.{f}" for f in ("running", "find", "kill")]
        return sorted(names)
