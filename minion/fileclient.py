"""The minion's file client: the master's files, cached by hash under `<cachedir>/files/<env>/<path>`.

A file is fetched only when the cached copy's sha256 differs from the master's; it arrives in chunks
(one request each) into a temporary file next to its place, hashed as it comes, and replaces the cached
copy only when the whole file matches the hash the master announced.  A file that changes on the
master while it is fetched is fetched once more, then reported.  Nothing is held whole in memory.

It is synchronous (a module function in a job's process calls it) and reaches the master through a
`Channel` (`minion.jobchannel`: the job's pipe to the minion process, or the minion's own link).
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import shutil
import stat
import time
from typing import Callable

from rx.minion.jobchannel import SYNCED, Channel, ChannelError
from rx.modules import CommandError, replacing
from rx.transport.errors import ProtocolError
from rx.transport.filemsgs import (FILE_LIST, FILE_RECV, FILE_STAT, MAX_CHUNK, SERVE_FILE, ChunkReply, ChunkRequest,
                                   FileListReply, FileListRequest, FileStatReply, FileStatRequest, PushReply,
                                   PushRequest, check_env, clean_path, is_master_url, split_url)

FETCH_ATTEMPTS = 2
PUSH_CHUNK = 1024 * 1024
HASH_WAIT_MAX = 1800.0
"""Longest wait for the master to finish hashing a file (it says so while it does)."""
UNSTABLE_ROUNDS = 3


class FileClientError(CommandError):
    """A master file could not be had: the message says why (a module function's error return)."""


class FileClient:
    def __init__(self, channel: Channel, cachedir: str, saltenv: str = "base",
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.channel = channel
        self.cachedir = cachedir
        self.saltenv = saltenv
        self._sleep = sleep

    # ------------------------------------------------------------ naming

    def split(self, url: str, saltenv: str | None = None, root_ok: bool = False) -> tuple[str, str]:
        """(path, environment) of a `salt://` or `rx://` URL (`?saltenv=` wins over `saltenv`)."""
        try:
            return split_url(url, saltenv or self.saltenv, root_ok=root_ok)
        except ValueError as exc:
            raise FileClientError(str(exc)) from None

    def env_dir(self, env: str) -> str:
        return os.path.join(self.cachedir, "files", check_env(env))

    def cache_path(self, rel: str, env: str) -> str:
        return os.path.join(self.env_dir(env), clean_path(rel))

    # ------------------------------------------------------------ asking the master

    def _ask(self, cmd: str, load: dict) -> dict:
        try:
            return self.channel.request(cmd, load)
        except ChannelError as exc:
            raise FileClientError(str(exc)) from None

    def stat(self, rel: str, env: str) -> FileStatReply:
        """The master's stat of a file, its hash included (waiting while the master hashes it)."""
        def ask() -> tuple[FileStatReply, bool, object]:
            st = _parse(FileStatReply, self._ask(FILE_STAT, FileStatRequest(env, rel).to_wire()))
            return st, st.kind != "file" or st.sha256 is not None, (st.size, st.mtime_ns)
        return self._until_hashed(ask, rel)

    def list(self, prefix: str, env: str) -> FileListReply:
        """Files (with hashes, waiting for them) and directories of `env` whose path starts with `prefix`."""
        def ask() -> tuple[FileListReply, bool, object]:
            listing = _parse(FileListReply, self._ask(FILE_LIST, FileListRequest(env, prefix).to_wire()))
            return listing, not listing.pending, {p: size for p, (size, sha) in listing.files.items() if sha is None}
        return self._until_hashed(ask, prefix or "the file list")

    def _until_hashed(self, ask: Callable[[], tuple], what: str):  # type: ignore[no-untyped-def]
        """Ask until the master has the hashes; a file that changes under every hash (being written) is
        reported after UNSTABLE_ROUNDS changes, instead of waited for."""
        deadline, delay, changes, last = time.monotonic() + HASH_WAIT_MAX, 0.05, 0, None
        while True:
            reply, done, signature = ask()
            if done:
                return reply
            changes += last is not None and signature != last
            last = signature
            if changes >= UNSTABLE_ROUNDS:
                raise FileClientError(f"{what} keeps changing on the master while it is hashed (is it being "
                                      f"written?): try again when it is stable")
            if time.monotonic() > deadline:
                raise FileClientError(f"the master is still hashing {what} after {HASH_WAIT_MAX:g}s")
            self._sleep(delay)
            delay = min(delay * 2, 1.0)

    def file_stat(self, url: str, saltenv: str | None = None) -> tuple[str, str, FileStatReply]:
        """(path, env, stat) of a master file; FileClientError if it is not a file there."""
        rel, env = self.split(url, saltenv)
        return rel, env, self._file_stat(rel, env)

    def _file_stat(self, rel: str, env: str) -> FileStatReply:
        st = self.stat(rel, env)
        if st.kind != "file":
            raise FileClientError(st.message or f"{rel}: not a file on the master")
        return st

    # ------------------------------------------------------------ the cache

    def cache_file(self, url: str, saltenv: str | None = None) -> str:
        """The path of the cached copy of a master file, fetched if it is missing or differs."""
        return self.fetch(*self.split(url, saltenv))

    def fetch(self, rel: str, env: str) -> str:
        """Cache the master file `rel` of `env` (fetched if missing or different); its cached path."""
        for attempt in range(FETCH_ATTEMPTS):
            try:
                return self._fetch(rel, env, self._file_stat(rel, env))
            except _Changed as exc:
                if attempt + 1 == FETCH_ATTEMPTS:
                    raise FileClientError(f"{exc} (tried {FETCH_ATTEMPTS} times; not served corrupt)") from None
        raise AssertionError("unreachable")

    def cache_dir(self, url: str, saltenv: str | None = None, include_empty: bool = False,
                  include_pat: str | None = None, exclude_pat: str | None = None) -> list[str]:
        """Cache every file under a master directory; the cached paths."""
        rel, env = self.split(url, saltenv, root_ok=True)
        prefix = rel + "/" if rel else ""
        listing = self.list(prefix, env)
        out = []
        for path, (_, sha) in sorted(listing.files.items()):
            if _pattern_ok(path, include_pat, exclude_pat):
                out.append(self._cached(path, env, sha) or self.fetch(path, env))
        if include_empty:
            for d in listing.dirs:
                os.makedirs(self.cache_path(d, env), exist_ok=True)
        return out

    def is_cached(self, url: str, saltenv: str | None = None) -> str:
        """The cached copy's path if there is one (without asking the master), else ''."""
        rel, env = self.split(url, saltenv)
        path = self.cache_path(rel, env)
        return path if os.path.isfile(path) else ""

    def _cached(self, rel: str, env: str, sha: bytes | None) -> str | None:
        path = self.cache_path(rel, env)
        return path if sha is not None and os.path.isfile(path) and local_sha256(path) == sha else None

    def _fetch(self, rel: str, env: str, st: FileStatReply) -> str:
        dest = self._cached(rel, env, st.sha256)
        if dest is not None:
            return dest
        dest = self.cache_path(rel, env)
        h, offset = hashlib.sha256(), 0
        with replacing(dest, makedirs=True) as out:
            while offset < st.size:
                load = ChunkRequest(env, rel, offset, MAX_CHUNK, st.size, st.mtime_ns).to_wire()
                chunk = _parse(ChunkReply, self._ask(SERVE_FILE, load))
                if chunk.problem == "changed":
                    raise _Changed(chunk.message)
                if chunk.problem:
                    raise FileClientError(chunk.message or f"{rel}: gone from the master")
                if not chunk.data or offset + len(chunk.data) > st.size:
                    raise _Changed(f"{rel}: the master sent {len(chunk.data)} bytes at offset {offset} of {st.size}")
                out.write(chunk.data)
                h.update(chunk.data)
                offset += len(chunk.data)
            if h.digest() != st.sha256:
                raise _Changed(f"{rel} changed on the master while it was served: its content does not match the "
                               f"sha256 announced")
        return dest

    # ------------------------------------------------------------ copies

    def get_file(self, url: str, dest: str, saltenv: str | None = None, makedirs: bool = False) -> str:
        """Copy a master file to `dest` (a directory: the file keeps its name); the path written."""
        cached = self.cache_file(url, saltenv)
        if dest.endswith("/") or os.path.isdir(dest):
            dest = os.path.join(dest, os.path.basename(cached))
        copy_into_place(cached, dest, makedirs)
        return dest

    def get_dir(self, url: str, dest: str, saltenv: str | None = None) -> list[str]:
        """Copy a master directory (and what is under it) into `dest`, as `dest/<its name>/...`."""
        rel, env = self.split(url, saltenv, root_ok=True)
        parent = os.path.dirname(rel)
        out = []
        for cached in self.cache_dir(url, saltenv):
            sub = os.path.relpath(cached, os.path.join(self.env_dir(env), parent))
            target = os.path.join(dest, sub)
            copy_into_place(cached, target, makedirs=True)
            out.append(target)
        return out

    def hash_file(self, url: str, saltenv: str | None = None) -> dict:
        """The master's sha256 of a file, as Salt shapes it."""
        _, _, st = self.file_stat(url, saltenv)
        assert st.sha256 is not None
        return {"hash_type": "sha256", "hsum": st.sha256.hex()}

    def list_master(self, saltenv: str | None = None, prefix: str = "") -> list[str]:
        return sorted(self._names(saltenv, prefix).files)

    def list_master_dirs(self, saltenv: str | None = None, prefix: str = "") -> list[str]:
        return sorted(self._names(saltenv, prefix).dirs)

    def _names(self, saltenv: str | None, prefix: str) -> FileListReply:
        """A listing whose hashes may still be missing (names are all that is needed)."""
        try:
            load = FileListRequest(check_env(saltenv or self.saltenv), _prefix(prefix)).to_wire()
        except ProtocolError as exc:
            raise FileClientError(str(exc)) from None
        return _parse(FileListReply, self._ask(FILE_LIST, load))

    # ------------------------------------------------------------ to the master

    def push(self, path: str, upload_path: str | None = None, keep_symlinks: bool = False) -> bool:
        """Send a local file to the master, stored as `<its cachedir>/minions/<id>/files/<path>`."""
        if not os.path.isabs(path):
            raise FileClientError(f"{path!r}: cp.push needs an absolute path")
        name = path if keep_symlinks else os.path.realpath(path)
        try:
            remote = clean_path((upload_path or name).lstrip("/"), "upload_path" if upload_path else "path")
        except ProtocolError as exc:
            raise FileClientError(str(exc)) from None
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            raise FileClientError(f"{path}: {exc.strerror}") from None
        try:
            before = os.fstat(fd)
            if not stat.S_ISREG(before.st_mode):
                raise FileClientError(f"{path}: not a regular file")
            offset, total = 0, before.st_size
            while True:
                data = os.pread(fd, PUSH_CHUNK, offset)
                if offset + len(data) > total or (not data and offset < total):
                    raise FileClientError(f"{path} changed while it was pushed")
                load = PushRequest(remote, offset, total, data).to_wire()
                reply = _parse(PushReply, self._ask(FILE_RECV, load))
                offset += len(data)
                if reply.done:
                    break
                if not data:
                    raise FileClientError(f"{path}: the master did not take the end of the file")
            after = os.fstat(fd)
            if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
                raise FileClientError(f"{path} changed while it was pushed: push it again")
            return True
        finally:
            os.close(fd)

    def sync(self, kind: str, saltenv: str | None = None) -> list[str]:
        """`saltutil.sync_modules` / `sync_grains` (`kind`: modules or grains): see `rx.minion.sync`."""
        from rx.minion.sync import sync  # sync builds on this module
        return sync(self, kind, saltenv)

    def sync_all(self, saltenv: str | None = None) -> dict[str, list[str]]:
        """`saltutil.sync_all`: `{"modules": [...], "grains": [...]}`."""
        from rx.minion.sync import sync_all
        return sync_all(self, saltenv)

    def notify_synced(self, kinds: list[str]) -> None:
        """Tell the minion process that these kinds were synced (it reloads them)."""
        self._ask(SYNCED, {"kinds": kinds})


class _Changed(Exception):
    pass


def _parse(cls, reply: dict):  # type: ignore[no-untyped-def]
    try:
        return cls.from_wire(reply)
    except ProtocolError as exc:
        raise FileClientError(f"the master's reply is malformed: {exc}") from None


def _prefix(prefix: str) -> str:
    try:
        cleaned = clean_path(prefix, "prefix", root_ok=True)
    except ProtocolError as exc:
        raise FileClientError(str(exc)) from None
    return cleaned + "/" if cleaned and prefix.endswith("/") else cleaned


def _pattern_ok(path: str, include: str | None, exclude: str | None) -> bool:
    """Salt's include_pat/exclude_pat: a glob, or `E@regex`."""
    def hit(pat: str) -> bool:
        return re.search(pat[2:], path) is not None if pat.startswith("E@") else fnmatch.fnmatch(path, pat)
    return (include is None or hit(include)) and (exclude is None or not hit(exclude))


def local_sha256(path: str) -> bytes:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1024 * 1024):
            h.update(chunk)
    return h.digest()


def copy_into_place(src: str, dest: str, makedirs: bool) -> None:
    """Copy `src` to `dest` through a temporary file beside it, so `dest` is never half written."""
    with replacing(dest, makedirs) as out, open(src, "rb") as f:
        shutil.copyfileobj(f, out, 1024 * 1024)


__all__ = ["FileClient", "FileClientError", "copy_into_place", "is_master_url", "local_sha256"]
