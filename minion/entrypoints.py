"""The installed packages' `rx.modules` entry points, read without keeping importlib.metadata loaded.

importlib.metadata (with email, zipfile, csv ...) costs the minion 1.5 MB of resident memory for good and a
one-shot `rx-call --local` tens of milliseconds, so the metadata is read in a short-lived forked child,
and the answer is kept in `<cachedir>/entry_points-<crc32 of sys.path>.cache` (without a cachedir, as for
`rx-call --local` with no minion config, in `~/.cache/rx/`) beside a fingerprint of the import path (every
`sys.path` directory with its modification time).  Installing, upgrading or removing a package adds or
removes a `*.dist-info` directory, which changes its directory's time: the fingerprint no longer matches
and the metadata is read again.  The cache is an optimisation only: an unreadable, foreign or stale file
is ignored, and one that cannot be written is not an error.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, Callable

log = logging.getLogger("rx.minion.loader")

GROUP = "rx.modules"
CACHE_FILE = "entry_points.cache"
_VERSION = 1


def installed(cachedir: str = "", refresh: bool = False) -> list[list[str]]:
    """`[name, value, "dist version"]` of every entry point in GROUP, sorted by name; from the cache in
    `cachedir` when its fingerprint still matches (never with `refresh`), else read and cached."""
    fingerprint = _fingerprint()
    path = cache_path(cachedir)
    if not refresh:
        cached = _load(path)
        if cached is not None and cached.get("fingerprint") == fingerprint:
            return cached["entry_points"]
    found = _in_child(_read)
    if found is not None:
        _store(path, {"v": _VERSION, "fingerprint": fingerprint, "entry_points": found})
    return found or []


def _user_cache() -> str:
    """Where the cache goes without a minion cachedir (`rx-call --local` with no minion config): the user's
    cache directory, as XDG says."""
    return os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "rx")


def cache_path(cachedir: str = "") -> str:
    """The cache file: CACHE_FILE with a checksum of the import path, so interpreters with different paths (two
    virtualenvs, a test run) each keep their own instead of overwriting one another's at every start."""
    import zlib
    stem, ext = os.path.splitext(CACHE_FILE)
    name = f"{stem}-{zlib.crc32(os.pathsep.join(sys.path).encode('utf-8', 'surrogateescape')):08x}{ext}"
    return os.path.join(cachedir or _user_cache(), name)


def _fingerprint() -> list[list[Any]]:
    out: list[list[Any]] = []
    for entry in sys.path:
        try:
            out.append([entry, os.stat(entry or ".").st_mtime_ns])
        except OSError:
            out.append([entry, None])
    return out


def _load(path: str) -> dict | None:
    from rx.transport.codec import DecodeError, decode
    try:
        with open(path, "rb") as f:
            data = decode(f.read(4 * 1024 * 1024))
    except (OSError, DecodeError):
        return None
    if not isinstance(data, dict) or data.get("v") != _VERSION or not isinstance(data.get("entry_points"), list):
        return None
    if not all(isinstance(e, list) and len(e) == 3 and all(isinstance(x, str) for x in e)
               for e in data["entry_points"]):
        return None
    return data


def _store(path: str, data: dict) -> None:
    from rx.transport.codec import encode
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(encode(data))
        os.replace(tmp, path)
    except OSError as exc:
        log.debug("cannot cache the entry points in %s: %s", path, exc)
        try:
            os.unlink(tmp)
        except OSError:
            pass


def _read() -> list[list[str]]:
    from importlib.metadata import entry_points
    eps = sorted(entry_points(group=GROUP), key=lambda e: e.name)
    return [[ep.name, ep.value, f"{ep.dist.name} {ep.dist.version}" if getattr(ep, "dist", None) else ""]
            for ep in eps]


def _in_child(read: Callable[[], Any]) -> Any:
    """`read()` computed in a forked child process and sent back (msgpack through a pipe); None with a
    warning if the child fails."""
    from rx.transport.codec import DecodeError, decode, encode
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 1
        try:
            os.close(r)
            view = memoryview(encode(read()))
            while view:
                view = view[os.write(w, view):]
            code = 0
        except BaseException:
            log.warning("cannot read the installed packages' %s entry points", GROUP, exc_info=True)
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    if status != 0:
        return None
    try:
        return decode(data)
    except DecodeError:
        return None
