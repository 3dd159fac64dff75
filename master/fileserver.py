"""The master's file server: the files of `file_roots`, by environment, for accepted minions.

Every path it is given has passed `filemsgs.clean_path` (relative, no `..`, no NUL); here it is joined
to each root of the environment in order, resolved, and served only if what it resolves to is a
regular file inside that root.  A symlink whose target leaves the root is served only with
`fileserver_followsymlinks` (rx's default is off; Salt's is on): a link out of the root is how a tree
someone else can commit to (a git checkout) would leak the master's own files.  Links inside the root
are followed.  Paths matching `file_ignore_regex` or `file_ignore_glob` do not exist for minions.
Reads are bounded (`file_buffer_size` per request) and checked against the stat the minion fetched
with, so a file that changes while it is served is reported, never served mixed.
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat
from dataclasses import dataclass
from typing import Iterator, Mapping

from rx.config import MasterConfig
from rx.master.filehash import HashCache, stat_key
from rx.transport.filemsgs import MAX_LIST_ENTRIES, ChunkReply, FileListReply, FileStatReply

SPECIAL_DIRS = ("_modules", "_grains", "_runners")
"""Directories of the file roots that `saltutil.sync_*` (and the master's runner loader) read."""


class FileServerError(Exception):
    """A request the file server cannot answer (an unknown environment, too many files): its message says why."""


@dataclass(frozen=True)
class FileServerSettings:
    roots: Mapping[str, tuple[str, ...]]
    follow_symlinks: bool = False
    ignore_regex: tuple[str, ...] = ()
    ignore_glob: tuple[str, ...] = ()
    buffer_size: int = 1024 * 1024
    hash_dir: str = ""


def file_server_settings(cfg: MasterConfig) -> FileServerSettings:
    return FileServerSettings(roots={env: tuple(dirs) for env, dirs in cfg.file_roots.items()},
                              follow_symlinks=cfg.fileserver_followsymlinks,
                              ignore_regex=tuple(cfg.file_ignore_regex), ignore_glob=tuple(cfg.file_ignore_glob),
                              buffer_size=cfg.file_buffer_size,
                              hash_dir=os.path.join(cfg.cachedir, "fileserver", "hashes"))


@dataclass(frozen=True)
class Found:
    path: str
    """the resolved path (no symlinks left in it)"""
    st: os.stat_result


class FileServer:
    def __init__(self, settings: FileServerSettings, hashes: HashCache | None = None) -> None:
        self.settings = settings
        self.hashes = hashes or HashCache(settings.hash_dir or None)
        self._regex = [re.compile(r) for r in settings.ignore_regex]

    def envs(self) -> list[str]:
        return sorted(self.settings.roots)

    def close(self) -> None:
        self.hashes.close()

    # ------------------------------------------------------------ the three requests

    def stat(self, env: str, rel: str) -> FileStatReply:
        self.hashes.new_request()
        roots = self._roots(env)
        found = self._find(roots, rel)
        if found is None:
            if self._is_dir(roots, rel):
                return FileStatReply("dir", message=f"{rel} is a directory in environment {env!r}")
            return FileStatReply("missing", message=f"no file {rel!r} in environment {env!r}")
        st = found.st
        return FileStatReply("file", st.st_size, st.st_mtime_ns, self.hashes.get(found.path, st))

    def list(self, env: str, prefix: str) -> FileListReply:
        """Files (with size and sha256) and directories whose path starts with `prefix`; a path found in
        several roots of the environment is the first root's."""
        self.hashes.new_request()
        files: dict[str, tuple[int, bytes | None]] = {}
        dirs: set[str] = set()
        found: dict[str, Found] = {}
        for root in self._roots(env):
            for rel, item in self._walk(root, prefix):
                if item is None:
                    dirs.add(rel)
                elif rel not in found:
                    found[rel] = item
                if len(found) + len(dirs) > MAX_LIST_ENTRIES:
                    raise FileServerError(f"more than {MAX_LIST_ENTRIES} files and directories under "
                                          f"{prefix or 'the root'!r} in environment {env!r}: ask for a longer prefix")
        for rel, item in sorted(found.items()):
            files[rel] = (item.st.st_size, self.hashes.get(item.path, item.st))
        return FileListReply(files=files, dirs=sorted(d for d in dirs if d not in found))

    def read(self, env: str, rel: str, offset: int, size: int, expect_size: int, expect_mtime_ns: int) -> ChunkReply:
        """At most `file_buffer_size` bytes from `offset`, if the file is still the version the minion's stat
        described; else a "changed" (or "missing") reply."""
        found = self._find(self._roots(env), rel)
        if found is None:
            return ChunkReply(problem="missing", message=f"no file {rel!r} in environment {env!r} (removed?)")
        try:
            fd = os.open(found.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            return ChunkReply(problem="missing", message=f"{rel}: {exc.strerror}")
        try:
            before = os.fstat(fd)
            if not stat.S_ISREG(before.st_mode):
                return ChunkReply(problem="missing", message=f"{rel} is not a regular file")
            if (before.st_size, before.st_mtime_ns) != (expect_size, expect_mtime_ns):
                return ChunkReply(problem="changed", message=_changed(rel, expect_size, before.st_size))
            data = os.pread(fd, min(size, self.settings.buffer_size), offset)
            if stat_key(os.fstat(fd)) != stat_key(before):
                return ChunkReply(problem="changed", message=f"{rel} changed on the master while it was read")
            return ChunkReply(data=data)
        finally:
            os.close(fd)

    # ------------------------------------------------------------ the master's own use

    def special_files(self, kind: str, env: str = "base") -> dict[str, str]:
        """`name.py` -> resolved path of the `_<kind>` directory's Python files (first root wins): how the
        master's runner loader reaches `_runners`."""
        out: dict[str, str] = {}
        for root in self._roots(env):
            for rel, item in self._walk(root, f"_{kind}/"):
                name = rel.split("/", 1)[1]
                if item is not None and "/" not in name and name.endswith(".py"):
                    out.setdefault(name, item.path)
        return out

    # ------------------------------------------------------------ resolution

    def _roots(self, env: str) -> list[str]:
        roots = self.settings.roots.get(env)
        if roots is None:
            have = ", ".join(self.envs()) or "none"
            raise FileServerError(f"no environment {env!r} on the master (environments: {have})")
        return [os.path.realpath(r) for r in roots]

    def _ignored(self, rel: str) -> bool:
        return (any(r.search(rel) for r in self._regex)
                or any(fnmatch.fnmatchcase(rel, g) for g in self.settings.ignore_glob))

    def _inside(self, root: str, real: str) -> bool:
        return self.settings.follow_symlinks or real == root or real.startswith(root + os.sep)

    def _resolve(self, root: str, rel: str) -> str | None:
        """The resolved path of `rel` under `root` if it stays inside (or links may leave), else None."""
        real = os.path.realpath(os.path.join(root, rel))
        return real if self._inside(root, real) else None

    def _find(self, roots: list[str], rel: str) -> Found | None:
        if self._ignored(rel) or any(self._ignored(d) for d in _parents(rel)):
            return None
        for root in roots:
            real = self._resolve(root, rel)
            if real is None:
                continue
            try:
                st = os.stat(real)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                return Found(real, st)
        return None

    def _is_dir(self, roots: list[str], rel: str) -> bool:
        if self._ignored(rel):
            return False
        for root in roots:
            real = self._resolve(root, rel)
            if real is not None and os.path.isdir(real):
                return True
        return False

    def _walk(self, root: str, prefix: str) -> Iterator[tuple[str, Found | None]]:
        """(rel, Found) for each served file and (rel, None) for each directory under `root` whose path
        starts with `prefix`; directories that cannot lead to the prefix are not entered."""
        seen: set[tuple[int, int]] = set()
        todo = [("", root)]
        while todo:
            rel_dir, real_dir = todo.pop()
            try:
                st = os.stat(real_dir)
                if (st.st_dev, st.st_ino) in seen:  # a link loop
                    continue
                seen.add((st.st_dev, st.st_ino))
                entries = sorted(os.scandir(real_dir), key=lambda e: e.name)
            except OSError:
                continue
            for entry in entries:
                rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
                if not (rel.startswith(prefix) or prefix.startswith(rel + "/")) or self._ignored(rel):
                    continue
                if _CONTROL.search(entry.name):
                    continue  # not a name a request can ask for
                real = os.path.realpath(entry.path) if entry.is_symlink() else entry.path
                if not self._inside(root, real):
                    continue
                try:
                    st = os.stat(real)
                except OSError:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    if rel.startswith(prefix):
                        yield rel, None
                    todo.append((rel, real))
                elif stat.S_ISREG(st.st_mode) and rel.startswith(prefix):
                    yield rel, Found(real, st)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _parents(rel: str) -> Iterator[str]:
    parts = rel.split("/")
    for i in range(1, len(parts)):
        yield "/".join(parts[:i])


def _changed(rel: str, expected: int, now: int) -> str:
    if expected != now:
        return f"{rel} changed on the master while it was served ({expected} bytes, now {now})"
    return f"{rel} changed on the master while it was served (modified again)"
