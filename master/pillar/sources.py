"""Where pillar files come from: `pillar_roots`, a list of directories per environment searched in order.

An sls name `a.b` is `a/b.sls` or else `a/b/init.sls`, in the first directory of the environment
that has either; a Jinja template (`{% from 'map.jinja' import x %}`) is a `/`-separated path found
the same way.  Every path stays inside its root: a name is made of plain components (no empty one,
no `.`/`..`, no `/` or `\\`, no NUL or control character), and a file that a symlink (its own or a
directory's above it) puts outside the root is refused, with an error naming it.  Files are read
whole, up to MAX_FILE_BYTES.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from typing import Mapping

MAX_FILE_BYTES = 8 * 1024 * 1024
"""Largest pillar file or template read."""
_BAD_PART = re.compile(r"[/\\\x00-\x1f\x7f]")


class PillarError(Exception):
    """A pillar that cannot be compiled: `where` names the file (`env:path`), `line` the line when known.
    The message never quotes the file's text (it may hold secrets)."""

    def __init__(self, where: str, message: str, line: int = 0) -> None:
        super().__init__(f"{where}{f' line {line}' if line else ''}: {message}")
        self.where, self.line, self.reason = where, line, message


@dataclass(frozen=True)
class Source:
    """One file found in a root: its environment, its path under the root ('/'-separated) and its real path."""

    env: str
    rel: str
    path: str

    @property
    def shown(self) -> str:
        """How errors name it: `base:a/b.sls` (never the master's full path)."""
        return f"{self.env}:{self.rel}"


def _check_parts(parts: list[str], what: str, where: str) -> None:
    for part in parts:
        if not part or part in (".", "..") or _BAD_PART.search(part):
            raise PillarError(where, f"{what} is not a plain name inside the pillar root (no empty, '.' or '..' "
                                     "component, no '/', '\\', NUL or control character)")


def sls_parts(name: str, where: str) -> list[str]:
    """The path components of sls `name` ('a.b' -> ['a', 'b']); PillarError for one that could leave its root."""
    if not isinstance(name, str) or not name or len(name) > 1024:
        raise PillarError(where, f"sls name {str(name)[:80]!r} must be a non-empty string")
    _check_parts(name.split("."), f"sls name {name[:200]!r}", where)
    return name.split(".")


def template_parts(path: str, where: str) -> list[str]:
    """The components of a template path ('macros/users.jinja'); no absolute path, no traversal."""
    if not isinstance(path, str) or not path or len(path) > 1024 or path.startswith("/"):
        raise PillarError(where, f"template path {str(path)[:200]!r} must be relative to the pillar root")
    parts = path.split("/")
    _check_parts(parts, f"template path {path[:200]!r}", where)
    return parts


class Roots:
    """The environments of `pillar_roots` and the files in them."""

    def __init__(self, roots: Mapping[str, list[str]]) -> None:
        self.roots = {env: [os.path.abspath(d) for d in dirs] for env, dirs in roots.items()}

    def envs(self) -> list[str]:
        """Every environment: `base` first, then the others by name."""
        return sorted(self.roots, key=lambda e: (e != "base", e))

    def find(self, env: str, parts: list[str]) -> Source | None:
        """The file `parts` in the first root of `env` that has it (None if none does)."""
        for root in self.roots.get(env, []):
            found = self._in(env, root, parts)
            if found is not None:
                return found
        return None

    def sls(self, env: str, name: str, where: str) -> Source | None:
        """sls `name`: `a/b.sls` or `a/b/init.sls` in the first root of `env` with either."""
        parts = sls_parts(name, where)
        for root in self.roots.get(env, []):
            found = self._in(env, root, [*parts[:-1], parts[-1] + ".sls"]) or self._in(env, root, [*parts, "init.sls"])
            if found is not None:
                return found
        return None

    @staticmethod
    def _in(env: str, root: str, parts: list[str]) -> Source | None:
        candidate = os.path.join(root, *parts)
        if not os.path.lexists(candidate):
            return None
        real, real_root = os.path.realpath(candidate), os.path.realpath(root)
        if os.path.commonpath([real, real_root]) != real_root:
            raise PillarError(f"{env}:{'/'.join(parts)}", "a symlink takes it out of its pillar root: refused")
        try:
            mode = os.stat(real).st_mode
        except OSError:
            return None  # a dangling link inside the root: as if it were not there
        return Source(env, "/".join(parts), real) if stat.S_ISREG(mode) else None

    @staticmethod
    def read(src: Source) -> str:
        """The file's text (UTF-8); PillarError if it cannot be read, is too large or not text."""
        try:
            fd = os.open(src.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            raise PillarError(src.shown, f"cannot read it: {exc.strerror}") from None
        with os.fdopen(fd, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise PillarError(src.shown, f"larger than {MAX_FILE_BYTES // 2**20} MiB")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PillarError(src.shown, f"not UTF-8 text (byte {exc.start})") from None
