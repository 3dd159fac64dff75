"""sha256 of the files the file server serves, cached by what identifies a file's content on disk
(device, inode, size, mtime and ctime in ns), so a list does not hash everything again.

A worker answers one request at a time, so it must never hash for long: it hashes a file inline only
while the request's byte budget lasts (`INLINE_BUDGET`); a larger file, or the files past the budget,
are hashed by one background thread of the worker while it serves other requests, and the reply says
their hash is not known yet (the minion asks again shortly).  Hashes are written to
`<cachedir>/fileserver/hashes`, shared by every worker and kept across restarts; a worker hashing a
file holds an flock on its entry, so two workers never hash the same file at once.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import logging
import os
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger("rx.master.fileserver")

INLINE_BUDGET = 32 * 1024 * 1024
"""Bytes one request may hash inline (tens of milliseconds); the rest go to the background thread."""
READ_SIZE = 1024 * 1024
MEMORY_ENTRIES = 100_000


def stat_key(st: os.stat_result) -> str:
    """What identifies one version of a file's content (a rewrite changes ctime, a replace the inode)."""
    return f"{st.st_dev} {st.st_ino} {st.st_size} {st.st_mtime_ns} {st.st_ctime_ns}"


def sha256_file(fd: int) -> bytes:
    h = hashlib.sha256()
    while chunk := os.read(fd, READ_SIZE):
        h.update(chunk)
    return h.digest()


class HashCache:
    def __init__(self, directory: str | None, budget: int = INLINE_BUDGET) -> None:
        self.dir = directory
        self.budget = budget
        self._left = budget
        self._memory: OrderedDict[str, tuple[str, bytes]] = OrderedDict()
        self._queued: set[str] = set()
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        if directory:
            try:
                os.makedirs(directory, mode=0o700, exist_ok=True)
            except OSError as exc:  # the file server still works, each worker hashing for itself
                log.warning("cannot keep file hashes in %s (%s): keeping them in memory only", directory, exc)
                self.dir = None

    def new_request(self) -> None:
        """Start a request's inline budget."""
        self._left = self.budget

    def get(self, path: str, st: os.stat_result) -> bytes | None:
        """The sha256 of the file at `path` (stat `st`), or None when it is being hashed in the background."""
        key = stat_key(st)
        known = self._lookup(path, key)
        if known is not None:
            return known
        if st.st_size <= self._left:
            self._left -= st.st_size
            return self._hash(path, key, lock=False)
        self._schedule(path, key)
        return None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------ storage

    def _entry(self, path: str) -> str | None:
        if not self.dir:
            return None
        name = hashlib.sha256(os.fsencode(path)).hexdigest()
        return os.path.join(self.dir, name[:2], name)

    def _lookup(self, path: str, key: str) -> bytes | None:
        hit = self._memory.get(path)
        if hit is not None and hit[0] == key:
            return hit[1]
        entry = self._entry(path)
        if entry is None:
            return None
        try:
            with open(entry) as f:
                stored_key, _, hexsum = f.read().strip().rpartition(" ")
        except OSError:
            return None
        if stored_key != key or len(hexsum) != 64:
            return None
        digest = bytes.fromhex(hexsum)
        self._remember(path, key, digest)
        return digest

    def _remember(self, path: str, key: str, digest: bytes) -> None:
        with self._lock:
            self._memory[path] = (key, digest)
            self._memory.move_to_end(path)
            while len(self._memory) > MEMORY_ENTRIES:
                self._memory.popitem(last=False)

    def _store(self, path: str, key: str, digest: bytes) -> None:
        self._remember(path, key, digest)
        entry = self._entry(path)
        if entry is None:
            return
        tmp = f"{entry}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            os.makedirs(os.path.dirname(entry), mode=0o700, exist_ok=True)
            with open(tmp, "w") as f:
                f.write(f"{key} {digest.hex()}\n")
            os.replace(tmp, entry)
        except OSError as exc:
            log.warning("cannot keep the hash of %s in %s: %s", path, self.dir, exc)
            try:
                os.unlink(tmp)
            except OSError:
                pass

    # ------------------------------------------------------------ hashing

    def _hash(self, path: str, key: str, lock: bool) -> bytes | None:
        """Hash the file if it still is the version `key` names; None if it changed or cannot be read
        (or, with `lock`, another worker is hashing it)."""
        lock_fd = None
        entry = self._entry(path)
        if lock and entry is not None:
            try:
                os.makedirs(os.path.dirname(entry), mode=0o700, exist_ok=True)
                lock_fd = os.open(entry + ".lock", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if lock_fd is not None:
                    os.close(lock_fd)
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    log.warning("cannot lock the hash entry of %s: %s", path, exc)
                return None
            known = self._lookup(path, key)  # the worker that held the lock may have just finished it
            if known is not None:
                os.close(lock_fd)
                return known
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            log.warning("cannot hash %s: %s", path, exc.strerror)
            if lock_fd is not None:
                os.close(lock_fd)
            return None
        try:
            if stat_key(os.fstat(fd)) != key:
                return None
            digest = sha256_file(fd)
            if stat_key(os.fstat(fd)) != key:
                return None  # written to while we read it
            self._store(path, key, digest)
            return digest
        except OSError as exc:
            log.warning("cannot hash %s: %s", path, exc.strerror)
            return None
        finally:
            os.close(fd)
            if lock_fd is not None:
                os.close(lock_fd)

    def _schedule(self, path: str, key: str) -> None:
        with self._lock:
            if path in self._queued:
                return
            self._queued.add(path)
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="rx-filehash")
        self._pool.submit(self._background, path, key)

    def _background(self, path: str, key: str) -> None:
        try:
            self._hash(path, key, lock=True)
        except Exception:  # a thread's failure must not go unseen, nor stop the next hash
            log.exception("hashing %s failed", path)
        finally:
            with self._lock:
                self._queued.discard(path)
