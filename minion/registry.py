"""The minion's function registry: built-ins of the minion process (job table, grains and module
refresh) and execution-module functions alike, resolved only through allow-lists.

Module functions run in a job's child process; their files are found by `rx.minion.loader` (built-in,
`module_dirs`, synced, entry points) and imported only when a function of their name is called, so
the minion answers `test.ping` without importing any other module.  Only names in a module's
`__all__` that look like `module.function` are callable.  Built-ins (`rx.minion.builtins`) run in the
minion process itself, because they act on its state.  `__virtual__` gets the registry's `context`.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import inspect
import logging
from typing import Any, Callable, Mapping

from rx.minion import loader
from rx.minion.builtins import BUILTINS as BUILTIN_FUNCTIONS
from rx.modules import ALIASES, INLINE, ExecContext
from rx.transport.ids import FUN_RE

log = logging.getLogger("rx.minion.loader")

BUILTIN_NAMES = frozenset(BUILTIN_FUNCTIONS)
_WARNED: set[tuple[str, ...]] = set()
"""Collisions already logged by this process (once each, however many registries: the swarm has many)."""


class UnknownFunction(Exception):
    """`fun` cannot be called here.  The message starts as Salt's ("'x.y' is not available.")."""

    def __init__(self, fun: str, why: str = "", suggestions: tuple[str, ...] = ()) -> None:
        text = f"'{fun}' is not available." + (f" {why}" if why else "")
        if suggestions:
            text += f" Did you mean: {', '.join(suggestions)}?"
        super().__init__(text)
        self.fun = fun
        self.why = why


class Registry:
    """Resolves `module.function` names.  `config` (a MinionConfig, or None) gives `module_dirs` and the
    cachedir of synced modules; the minion process binds the built-ins to itself with `attach_host`."""

    def __init__(self, config: Any = None) -> None:
        self.config = config
        self.context: ExecContext | None = None
        """what `__virtual__` receives (the minion sets it, with its grains and config)"""
        self._host: Any = None
        self.rescan()

    # ------------------------------------------------------------ sources

    def rescan(self, refresh_entry_points: bool = False) -> None:
        """Find the module files again and forget which were available; with `refresh_entry_points`, read
        the installed packages' metadata again too (`rxutil.refresh_modules`: after a pip install)."""
        if refresh_entry_points:
            importlib.invalidate_caches()
            loader.entry_point_candidates(refresh=True)
        dirs = tuple(getattr(self.config, "module_dirs", ()) or ())
        self._table = loader.scan(dirs, getattr(self.config, "cachedir", "") or "")
        self._loaded: dict[str, loader.Loaded] = {}
        self._unavailable: dict[str, str] = {}
        for name, cands in loader.collisions(self._table).items():
            key = (name, *(c.describe() for c in cands))
            if key not in _WARNED:
                _WARNED.add(key)
                log.warning("module %r is served by several files; tried in this order, the first available "
                            "wins: %s", name, "; ".join(c.describe() for c in cands))

    def sources(self) -> Mapping[str, list[loader.Candidate]]:
        """Every module name found, with the files that may serve it (precedence order)."""
        return self._table

    # ------------------------------------------------------------ built-ins

    def attach_host(self, host: Any) -> None:
        """Bind the built-ins to the minion process (`rx.minion.builtins.Host`)."""
        self._host = host

    def builtin(self, fun: Any) -> Callable | None:
        """The bound handler if `fun` is a built-in and the minion is attached (run inline, not in a job)."""
        name = canonical(fun) if isinstance(fun, str) else None
        if self._host is None or name not in BUILTIN_NAMES:
            return None
        return functools.partial(BUILTIN_FUNCTIONS[name], self._host)

    def inline(self, fun: Any) -> bool:
        """Whether the minion runs `fun` in its own process (rx.modules.INLINE): one function, listed there,
        served by rx's own file.  Only the modules of listed names are imported into the minion process."""
        if not isinstance(fun, str) or fun not in INLINE:
            return False
        try:
            found = self.module(fun.split(".", 1)[0])
        except UnknownFunction:
            return False
        return found.candidate.source == loader.BUILT_IN and fun.split(".", 1)[1] in found.exported

    # ------------------------------------------------------------ modules

    def module(self, name: str) -> loader.Loaded:
        """The file serving module `name` (imported once); UnknownFunction with the reason if none does."""
        name = ALIASES.get(name, name)
        found = self._loaded.get(name)
        if found is not None:
            return found
        if name in self._unavailable:
            raise UnknownFunction(name, self._unavailable_text(name))
        cands = self._table.get(name)
        if not cands:
            raise UnknownFunction(name, f"There is no module {name!r}.")
        ctx = self.context or ExecContext(registry=self)
        reasons = []
        for cand in cands:
            outcome = loader.load(cand, ctx)
            if isinstance(outcome, loader.Loaded):
                self._loaded[name] = outcome
                return outcome
            reasons.append(outcome)
        self._unavailable[name] = "; ".join(reasons)
        raise UnknownFunction(name, self._unavailable_text(name))

    def _unavailable_text(self, name: str) -> str:
        return f"Module {name!r} is unavailable here: {self._unavailable[name]}"

    def resolve(self, fun: Any) -> Callable:
        """The module function for `fun`; UnknownFunction unless it is allow-listed."""
        if not isinstance(fun, str) or not FUN_RE.match(fun):
            raise UnknownFunction(str(fun), "Function names are 'module.function'.")
        if canonical(fun) in BUILTIN_NAMES:
            raise UnknownFunction(fun, "It runs in the minion daemon itself: send it alone (not in a multi-function "
                                       "job) through the master.")
        mod_name, func_name = fun.split(".", 1)
        if ALIASES.get(mod_name, mod_name) not in self._table:  # none, or only built-ins (rxutil)
            why = "" if mod_name in self._module_names() else f"There is no module {mod_name!r}."
            raise UnknownFunction(fun, why, self.suggest(fun))
        try:
            found = self.module(mod_name)
        except UnknownFunction as exc:
            raise UnknownFunction(fun, exc.why) from None
        if func_name not in found.exported:
            raise UnknownFunction(fun, suggestions=self.suggest(fun))
        return getattr(found.module, func_name)

    def suggest(self, fun: str) -> tuple[str, ...]:
        """Up to three callable names close to `fun`: in its module, or in the modules whose names are
        closest to its module's (only those modules are imported)."""
        mod_name, _, func_name = str(fun).partition(".")
        known = self._module_names()
        mods = [mod_name] if mod_name in known else difflib.get_close_matches(mod_name, sorted(known), n=3)
        out: list[str] = []
        for m in mods:
            funcs = [b.split(".", 1)[1] for b in BUILTIN_NAMES if b.split(".")[0] == ALIASES.get(m, m)]
            try:
                funcs += self.module(m).exported
            except UnknownFunction:
                pass
            close = [func_name] if func_name in funcs else difflib.get_close_matches(func_name, funcs, n=3, cutoff=0.7)
            out += [f"{m}.{f}" for f in close if f"{m}.{f}" != fun]
        return tuple(out[:3])

    def _module_names(self) -> set[str]:
        """Every module name known (available here or not), aliases included."""
        return set(self._table) | set(ALIASES) | {b.split(".")[0] for b in BUILTIN_NAMES}

    def function(self, fun: str) -> Callable:
        """The callable named `fun`, built-ins included (their minion parameter bound, or None)."""
        name = canonical(fun)
        if name in BUILTIN_NAMES:
            return self.builtin(name) or functools.partial(BUILTIN_FUNCTIONS[name], None)
        return self.resolve(fun)

    def doc(self, fun: str) -> str:
        """The docstring of `fun` (an alias says what it stands for)."""
        name = canonical(fun)
        func = BUILTIN_FUNCTIONS.get(name) or self.resolve(fun)
        text = inspect.cleandoc(func.__doc__ or "")
        return text if name == fun else f"(alias of {name})\n{text}"

    def functions(self) -> list[str]:
        """Every callable `module.function` available here: built-ins, modules, and their aliases."""
        names = set(BUILTIN_NAMES)
        for m in self._table:
            try:
                names.update(f"{m}.{f}" for f in self.module(m).exported)
            except UnknownFunction:
                pass
        return sorted(names | _aliased(names))

    def modules(self) -> list[str]:
        """The module names available here (every source; aliases and built-in modules included)."""
        names = {b.split(".")[0] for b in BUILTIN_NAMES}
        for m in self._table:
            try:
                self.module(m)
                names.add(m)
            except UnknownFunction:
                pass
        return sorted(names | {alias for alias, real in ALIASES.items() if real in names})

    def unavailable(self) -> dict[str, str]:
        """Every module name rx knows that is unavailable here, with why (this imports them all)."""
        self.modules()
        return dict(sorted(self._unavailable.items()))

    def provider(self, name: str) -> str:
        """The base name (no extension) of the file serving module `name`, "" if none does."""
        name = ALIASES.get(name, name)
        if any(b.startswith(name + ".") for b in BUILTIN_NAMES) and name not in self._table:
            return "builtins"
        try:
            return self.module(name).provider
        except UnknownFunction:
            return ""


def canonical(fun: str) -> str:
    """`fun` with an aliased module name replaced by rx's own (`saltutil.running` -> `rxutil.running`)."""
    mod, dot, rest = fun.partition(".")
    return ALIASES[mod] + dot + rest if mod in ALIASES else fun


def _aliased(names: set[str] | frozenset[str]) -> set[str]:
    """The alias spellings of `names` (`rxutil.running` -> `saltutil.running`)."""
    back = {real: alias for alias, real in ALIASES.items()}
    out = set()
    for n in names:
        mod, _, rest = n.partition(".")
        if mod in back:
            out.add(f"{back[mod]}.{rest}")
    return out
