"""Where execution modules come from, which file serves each module name, and loading one.

Sources, highest precedence first (when two serve the same name, the higher one is tried first;
if its `__virtual__` says no, the next one is tried, so a custom `pkg` that only handles some hosts
falls back to the built-in one):

1. `module_dirs` (minion config): directories of `<name>.py` files, in the order listed;
2. synced: `<cachedir>/extmods/modules`, filled from the master's file server;
3. installed packages: entry points in the group `rx.modules`, `name = package.module` (the entry
   point's name is the module name it serves, its value names a module object);
4. built-in: the files of `rx.modules.MODULES`.

This is Salt's order (a custom module replaces the built-in of its name).  A name served from more
than one source is logged once, at warning level, naming the file that wins.  A file may serve
another name than its own with a top-level `__virtualname__ = "name"` (a plain string literal: it
is read from the text, not imported).  Scanning reads directory listings and package metadata
only; a module file is imported when a function of its name is called.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterable

from rx.modules import MODULES, ExecContext, takes_context
from rx.transport.ids import FUN_RE

log = logging.getLogger("rx.minion.loader")

SYNCED_DIR = os.path.join("extmods", "modules")
"""Below the minion's cachedir: where modules synced from the master land."""

MODULE_DIRS, SYNCED, ENTRY_POINT, BUILT_IN = "module_dirs", "synced", "entry point", "built-in"
PRECEDENCE = (MODULE_DIRS, SYNCED, ENTRY_POINT, BUILT_IN)

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
_VIRTUALNAME_RE = re.compile(r"""^__virtualname__\s*=\s*["']([A-Za-z_][A-Za-z0-9_]*)["']\s*(?:#.*)?$""", re.M)


@dataclass(frozen=True)
class Candidate:
    """One file that may serve module `name`."""

    name: str
    source: str
    origin: str
    """what is imported: `rx.modules.<file>`, a file path, or an entry point's `package.module`"""
    label: str = ""
    """for entry points: `<name> = <value>` and the distribution that declares it"""

    def describe(self) -> str:
        return f"{self.label or self.origin} ({self.source})"

    def load(self) -> ModuleType:
        """Import the file (any exception propagates: the caller reports it)."""
        if self.source == BUILT_IN:
            return importlib.import_module(self.origin)
        if self.source == ENTRY_POINT:  # `package.module` or `package.module:attribute` (importlib.metadata's form)
            module, _, attrs = self.origin.partition(":")
            obj = importlib.import_module(module.strip())
            for attr in filter(None, attrs.strip().split(".")):
                obj = getattr(obj, attr)
            if not isinstance(obj, ModuleType):
                raise TypeError(f"the entry point names a {type(obj).__name__}, not a module")
            return obj
        return _import_file(Path(self.origin), f"rx_ext.{self.source}.{_mangle(self.origin)}")


def _mangle(path: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", path.lstrip("/"))


def _import_file(path: Path, mod_name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = mod  # during exec, as an import would (dataclasses look themselves up there)
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        sys.modules.pop(mod_name, None)
        raise
    return mod


def scan(module_dirs: Iterable[str] = (), cachedir: str = "") -> dict[str, list[Candidate]]:
    """Every candidate of every module name, in precedence order."""
    found: list[Candidate] = []
    for d in module_dirs:
        found += _dir_candidates(Path(d), MODULE_DIRS)
    if cachedir:
        found += _dir_candidates(Path(cachedir) / SYNCED_DIR, SYNCED)
    found += entry_point_candidates(cachedir=cachedir)
    found += [Candidate(name, BUILT_IN, f"rx.modules.{file}") for file, name in MODULES.items()]
    table: dict[str, list[Candidate]] = {}
    for c in found:
        table.setdefault(c.name, []).append(c)
    return table


def _dir_candidates(d: Path, source: str) -> list[Candidate]:
    try:
        files = sorted(p for p in d.iterdir() if p.suffix == ".py" and p.is_file())
    except FileNotFoundError:
        if source == MODULE_DIRS:
            log.warning("module_dirs: %s does not exist: no modules from there", d)
        return []
    except OSError as exc:
        log.warning("%s: cannot list %s: %s", source, d, exc.strerror)
        return []
    out = []
    for path in files:
        if path.name.startswith(("_", ".")):
            continue
        name = _virtualname(path) or path.stem
        if not NAME_RE.match(name):
            log.warning("%s: %s ignored: %r is not a module name (letters, digits, _)", source, path, name)
            continue
        out.append(Candidate(name, source, str(path)))
    return out


def _virtualname(path: Path) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            m = _VIRTUALNAME_RE.search(f.read(64 * 1024))
    except OSError:
        return ""
    return m.group(1) if m else ""


_entry_points: list[Candidate] | None = None


def entry_point_candidates(refresh: bool = False, cachedir: str = "") -> list[Candidate]:
    """The `rx.modules` entry points of the installed packages (read once per process, and again on
    `refresh`: many minions in one process, the swarm, share the one answer).  How they are read, and
    cached in `cachedir`: rx.minion.entrypoints."""
    global _entry_points
    if _entry_points is None or refresh:
        from rx.minion.entrypoints import installed
        out = []
        for name, value, dist in installed(cachedir, refresh):
            label = f"{name} = {value}" + (f" from {dist}" if dist else "")
            if not NAME_RE.match(name):
                log.warning("entry point %s ignored: %r is not a module name", label, name)
                continue
            out.append(Candidate(name, ENTRY_POINT, value, label))
        _entry_points = out
    return _entry_points


def collisions(table: dict[str, list[Candidate]]) -> dict[str, list[Candidate]]:
    """Names served by more than one source (or by two files of one source outside the built-ins)."""
    out = {}
    for name, cands in table.items():
        outside = [c for c in cands if c.source != BUILT_IN]
        if outside and (len(outside) > 1 or len(cands) > len(outside)):
            out[name] = cands
    return out


@dataclass(frozen=True)
class Loaded:
    """A module that serves its name here, and the names callable in it: those of its `__all__` that
    are public (no leading `_`), look like a function name and are callable."""

    module: ModuleType
    candidate: Candidate
    exported: tuple[str, ...]

    @property
    def provider(self) -> str:
        """The file's base name without extension (Salt's `test.provider` shape)."""
        path = getattr(self.module, "__file__", None) or self.candidate.origin
        return os.path.splitext(os.path.basename(path))[0]


def load(candidate: Candidate, ctx: ExecContext) -> Loaded | str:
    """Import `candidate` and ask its `__virtual__` (given `ctx` if it takes one): Loaded, or why not."""
    where = candidate.describe()
    try:
        mod = candidate.load()
    except (Exception, SystemExit) as exc:  # a module that cannot import is unavailable; the rest keep working
        return f"{where}: cannot import: {type(exc).__name__}: {exc}"
    verdict = _virtual(mod, ctx)
    if verdict:
        return f"{where}: {verdict}"
    names = getattr(mod, "__all__", None)
    if not isinstance(names, (list, tuple)):
        return f"{where}: defines no __all__ (the list of its callable functions)"
    exported = tuple(n for n in names if isinstance(n, str) and not n.startswith("_")
                     and FUN_RE.match(f"{candidate.name}.{n}") and callable(getattr(mod, n, None)))
    return Loaded(mod, candidate, exported)


def _virtual(mod: ModuleType, ctx: ExecContext) -> str:
    """"" if `mod` may serve here, else why not.  True, a non-empty string (Salt's modules return their
    virtual name) or `(True, ...)` say yes; False, "" or `(False, "why")` say no."""
    virtual: Callable[..., Any] | None = getattr(mod, "__virtual__", None)
    if virtual is None:
        return ""
    try:
        verdict = virtual(ctx) if takes_context(virtual) else virtual()
    except Exception as exc:
        return f"__virtual__ failed: {type(exc).__name__}: {exc}"
    if isinstance(verdict, tuple):
        ok, why = (verdict + ("",))[:2]
        return "" if ok else str(why or "__virtual__ returned False")
    return "" if verdict else "__virtual__ returned False"
