"""Custom grain functions: Python files in `<cachedir>/extmods/grains` (what `saltutil.sync_grains`
fills from the master's `_grains` directories) and installed packages that declare an entry point
in the group `rx.grains`.

A grains module is a plain Python file; each public function (or the names in its `__all__`) is
called with no arguments, or with `grains=` (a copy of the core grains) if it has such a
parameter, and returns a dict of grains.  A module may define `__virtual__()` returning False
to stay out.  An entry point may name a module or one function.  Sources run in this order, a
later one overriding an earlier one on the same key: entry points (by name), then the files (by
name).  A module that fails to import, a function that raises or returns something that is not
a dict of plain values (str, int, float, bool, None, lists and dicts of them) is logged and left
out; the minion keeps starting.

A file is loaded only if it and its directory belong to root or to the minion's user and are
not writable by group or others: what runs inside the minion process must be no easier to plant
than the minion itself."""

from __future__ import annotations

import importlib.util
import inspect
import logging
import os
import stat
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterable, Mapping

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "rx.grains"
EXTMODS = ("extmods", "grains")
MAX_DEPTH = 32


def extmods_dir(cachedir: str) -> Path:
    """`<cachedir>/extmods/grains`, where synced custom grains modules live."""
    return Path(cachedir, *EXTMODS)


def _safe(path: Path) -> str:
    """'' if `path` may be loaded, else why not."""
    try:
        st = path.stat()
    except OSError as exc:
        return exc.strerror or str(exc)
    if st.st_uid not in (0, os.getuid()):
        return f"owned by uid {st.st_uid}, neither root nor the minion's user"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return "writable by group or others"
    return ""


def _import_file(path: Path) -> ModuleType | None:
    for checked in (path.parent, path):
        why = _safe(checked)
        if why:
            log.warning("grains: not loading %s: %s is %s", path, checked, why)
            return None
    name = f"rx_custom_grains.{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        return None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    except Exception:  # custom code: anything it raises is its problem, logged; the minion goes on
        sys.modules.pop(name, None)
        log.warning("grains: cannot import custom grains module %s", path, exc_info=True)
        return None
    return mod


def _declared(group: str) -> bool:
    """True if an installed distribution on sys.path may declare entry points in `group` (a quick look
    at the entry_points.txt files, so importlib.metadata, ~1 MB, is imported only when one does)."""
    marker = f"[{group}]"
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.endswith((".dist-info", ".egg-info")):
                try:
                    with open(os.path.join(entry or ".", name, "entry_points.txt"), encoding="utf-8") as f:
                        if marker in f.read():
                            return True
                except (OSError, UnicodeDecodeError):
                    continue
    return False


def _entry_points() -> list[tuple[str, Any]]:
    if not _declared(ENTRY_POINT_GROUP):
        return []
    from importlib.metadata import entry_points
    out = []
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            out.append((f"entry point {ep.name} ({ep.value})", ep.load()))
        except Exception:
            log.warning("grains: cannot load entry point %s = %s", ep.name, ep.value, exc_info=True)
    return out


def _functions(label: str, obj: Any) -> list[Callable]:
    if not isinstance(obj, ModuleType):
        return [obj] if callable(obj) else []
    virtual = getattr(obj, "__virtual__", None)
    if callable(virtual):
        try:
            verdict = virtual()
        except Exception:
            log.warning("grains: %s: __virtual__ failed", label, exc_info=True)
            return []
        if not (verdict[0] if isinstance(verdict, tuple) else verdict):
            return []
    names = getattr(obj, "__all__", None)
    if names is None:
        names = [n for n, v in vars(obj).items()
                 if not n.startswith("_") and inspect.isfunction(v) and v.__module__ == obj.__name__]
    return [f for f in (getattr(obj, n, None) for n in sorted(names)) if callable(f)]


def plain(value: Any, depth: int = 0) -> bool:
    """True if `value` is made only of what the wire carries as is."""
    if depth > MAX_DEPTH:
        return False
    if value is None or isinstance(value, (str, int, float, bool)):
        return True
    if isinstance(value, (list, tuple)):
        return all(plain(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and plain(v, depth + 1) for k, v in value.items())
    return False


def _call(label: str, fn: Callable, core: Mapping[str, Any]) -> dict[str, Any]:
    where = f"{label}: {getattr(fn, '__name__', fn)!s}"
    try:
        params = inspect.signature(fn).parameters
        value = fn(grains=dict(core)) if "grains" in params else fn()
    except Exception:
        log.warning("grains: %s raised", where, exc_info=True)
        return {}
    if not isinstance(value, dict):
        if value is not None:
            log.warning("grains: %s returned %s, not a dict of grains: ignored", where, type(value).__name__)
        return {}
    good = {k: v for k, v in value.items() if isinstance(k, str) and plain(v)}
    if len(good) != len(value):
        log.warning("grains: %s: left out %s (not plain data)", where, sorted(map(str, set(value) - set(good))))
    return good


def custom_grains(dirs: Iterable[Path], core: Mapping[str, Any], *, entry_points: bool = True) -> dict[str, Any]:
    """The grains of every custom grains function, merged in order (see the module doc)."""
    sources: list[tuple[str, Any]] = _entry_points() if entry_points else []
    for d in dirs:
        if d.is_dir():
            for path in sorted(d.glob("*.py")):
                mod = _import_file(path)
                if mod is not None:
                    sources.append((str(path), mod))
    out: dict[str, Any] = {}
    for label, obj in sources:
        for fn in _functions(label, obj):
            out.update(_call(label, fn, core))
    return out
