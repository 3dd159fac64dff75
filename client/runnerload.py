"""Finding runner functions, through allow-lists only: the built-in modules of `rx.runners.RUNNERS`,
installed packages' `rx.runners` entry points, `<cachedir>/extmods/runners/*.py`, and `_runners/*.py` in the
master's file roots (base environment).  A module exports the names in its `__all__` and nothing else;
a name from the command line is never used to reach anything but those.  Arguments are checked against the function's signature before the
call, so a wrong one is a usage error that shows the signature.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import importlib.util
import inspect
import logging
import os
import re
import stat
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from rx.client.results import BadRequest
from rx.modules import CONTEXT_PARAM
from rx.runners import RUNNERS

log = logging.getLogger("rx.runners")

ENTRY_POINT_GROUP = "rx.runners"
EXTMODS_SUBDIR = os.path.join("extmods", "runners")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
_FUN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*\Z")


class UnknownRunner(BadRequest):
    """No such runner function; the message names the close matches."""


def signature(fun: str, func: Callable) -> str:
    """`manage.up(tgt='*', tgt_type='glob', timeout=None)`: how a user calls it (ctx hidden)."""
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return f"{fun}(...)"
    params = [p.replace(annotation=inspect.Parameter.empty) for n, p in enumerate(sig.parameters.values())
              if not (n == 0 and p.name == CONTEXT_PARAM)]
    return f"{fun}{sig.replace(parameters=params, return_annotation=inspect.Signature.empty)}"


def _unsafe(path: Path) -> str:
    """Why a custom runner file or its directory must not be loaded ("" if it may): it must be owned by
    root or this process's user and not writable by group or others."""
    try:
        st = path.lstat()
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror}"
    if stat.S_ISLNK(st.st_mode):
        return f"{path} is a symbolic link"
    if st.st_uid not in (0, os.geteuid()):
        return f"{path} is owned by uid {st.st_uid}, not by root or the master's user"
    if st.st_mode & 0o022:
        return f"{path} is writable by group or others (mode {stat.S_IMODE(st.st_mode):04o})"
    return ""


class RunnerRegistry:
    """The runner modules available on this master host, loaded on first use."""

    def __init__(self, cachedir: str | None = None, *, entry_points: bool = True,
                 file_runners: Callable[[], dict[str, str]] | None = None) -> None:
        self.cachedir = cachedir
        self.file_runners = file_runners
        """`name.py` -> path of the `_runners` files in the master's file roots (the base environment)"""
        self._modules: dict[str, ModuleType] = {}
        self._unavailable: dict[str, str] = {}
        self._sources: dict[str, Callable[[], ModuleType]] | None = None
        self._entry_points = entry_points

    # ------------------------------------------------------------ where modules come from

    def _find(self) -> dict[str, Callable[[], ModuleType]]:
        """Module name -> how to import it: built-ins first, then entry points, then extmods (a later
        source never replaces an earlier one's name)."""
        if self._sources is not None:
            return self._sources
        sources: dict[str, Callable[[], ModuleType]] = {}
        for file, name in RUNNERS.items():
            sources[name] = lambda file=file: importlib.import_module(f"rx.runners.{file}")
        for name, load in [*self._entry_point_sources(), *self._extmod_sources(), *self._file_root_sources()]:
            if not _NAME.match(name):
                self._unavailable[name] = "not a valid runner module name"
            elif name in sources:
                log.warning("custom runner module %r ignored: a runner module of that name is already loaded "
                            "(built-in, or an earlier source)", name)
            else:
                sources[name] = load
        self._sources = sources
        return sources

    def _entry_point_sources(self) -> list[tuple[str, Callable[[], ModuleType]]]:
        if not self._entry_points:
            return []
        from importlib.metadata import entry_points
        return [(ep.name, ep.load) for ep in entry_points(group=ENTRY_POINT_GROUP)]

    def _extmod_sources(self) -> list[tuple[str, Callable[[], ModuleType]]]:
        if not self.cachedir:
            return []
        folder = Path(self.cachedir) / EXTMODS_SUBDIR
        if not folder.is_dir():
            return []
        why = _unsafe(folder)
        if why:
            log.warning("custom runners in %s not loaded: %s", folder, why)
            return []
        return [(path.stem, lambda path=path: _load_file(path)) for path in sorted(folder.glob("*.py"))]

    def _file_root_sources(self) -> list[tuple[str, Callable[[], ModuleType]]]:
        """`_runners/*.py` in the master's file roots, read where they are (no sync needed on the master)."""
        if self.file_runners is None:
            return []
        out = []
        for file, path in sorted(self.file_runners().items()):
            why = _unsafe(Path(path).parent)
            if why:
                log.warning("custom runner %s not loaded: %s", path, why)
                continue
            out.append((Path(file).stem, lambda path=path: _load_file(Path(path))))
        return out

    # ------------------------------------------------------------ modules and functions

    def modules(self) -> list[str]:
        """Every runner module name known here (available or not)."""
        return sorted(set(self._find()) | set(self._unavailable))

    def module(self, name: str) -> ModuleType:
        """The runner module `name`; UnknownRunner with the reason if it is not available."""
        mod = self._modules.get(name)
        if mod is not None:
            return mod
        if name in self._unavailable:
            raise UnknownRunner(f"runner module {name!r} is unavailable: {self._unavailable[name]}")
        load = self._find().get(name)
        if load is None:
            raise UnknownRunner(self._unknown(name, self.modules(), "runner module"))
        try:
            mod = load()
        except Exception as exc:  # a custom module that cannot import is unavailable, the rest keep working
            self._unavailable[name] = f"cannot import: {type(exc).__name__}: {exc}"
            raise UnknownRunner(f"runner module {name!r} is unavailable: {self._unavailable[name]}") from None
        exported = getattr(mod, "__all__", None)
        if not isinstance(exported, (list, tuple)) or not all(isinstance(n, str) for n in exported):
            self._unavailable[name] = "it has no __all__ listing the runner functions it exports"
            raise UnknownRunner(f"runner module {name!r} is unavailable: {self._unavailable[name]}")
        self._modules[name] = mod
        return mod

    def functions(self) -> list[str]:
        """Every `module.function` runner available here."""
        names = []
        for m in self.modules():
            try:
                mod = self.module(m)
            except UnknownRunner:
                continue
            names.extend(f"{m}.{f}" for f in mod.__all__ if callable(getattr(mod, f, None)))
        return sorted(names)

    def unavailable(self) -> dict[str, str]:
        """Runner modules found unavailable so far, with why."""
        return dict(self._unavailable)

    def resolve(self, fun: Any) -> Callable:
        """The runner function `fun` names; UnknownRunner (with close matches) unless it is exported."""
        if not isinstance(fun, str) or not _FUN.match(fun):
            raise UnknownRunner(f"{str(fun)[:100]!r} is not a runner name: use module.function (e.g. manage.up)")
        mod_name, func_name = fun.split(".", 1)
        if mod_name not in self._find() and mod_name not in self._unavailable:
            raise UnknownRunner(self._unknown(fun, self.functions(), "runner"))
        mod = self.module(mod_name)
        func = getattr(mod, func_name, None) if func_name in mod.__all__ else None
        if not callable(func):
            raise UnknownRunner(self._unknown(fun, self.functions(), "runner"))
        return func

    def doc(self, pattern: str = "*") -> dict[str, str]:
        """`{fun: "signature\\n\\ndocstring"}` of the runners matching a glob (`manage` alone means `manage.*`)."""
        if "." not in pattern and not any(c in pattern for c in "*?["):
            pattern += ".*"
        out = {}
        for fun in self.functions():
            if fnmatch.fnmatchcase(fun, pattern):
                func = self.resolve(fun)
                out[fun] = signature(fun, func) + "\n\n" + inspect.cleandoc(func.__doc__ or "(no documentation)")
        return out

    @staticmethod
    def _unknown(name: str, known: list[str], what: str) -> str:
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.8)
        hint = f"; did you mean {' or '.join(close)}?" if close else "; see rx-run -d for the list"
        return f"no {what} {name!r}{hint}"


def check_args(fun: str, func: Callable, args: list, kwargs: dict) -> None:
    """BadRequest, with the function's signature, unless `func` accepts these arguments."""
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return
    params = list(sig.parameters.values())
    if params and params[0].name == CONTEXT_PARAM:
        sig = sig.replace(parameters=params[1:])
    try:
        sig.bind(*args, **kwargs)
    except TypeError as exc:
        raise BadRequest(f"{fun}: {exc}; usage: {signature(fun, func)}") from None


def _load_file(path: Path) -> ModuleType:
    why = _unsafe(path)
    if why:
        raise ImportError(f"not loaded: {why}")
    spec = importlib.util.spec_from_file_location(f"rx_extmods_runners.{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
