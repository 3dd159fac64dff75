"""The local key store: one file per minion id per state directory under pki_dir, holding the
minion's raw Ed25519 public key in base64 (Salt's layout: minions, minions_pre,
minions_rejected, minions_denied).  Every path is built from a validated id and checked to
stay inside its directory.

Every change (filing a key on `_auth`, rx-key's moves and deletions) holds an exclusive
flock on `<pki_dir>/.keys.lock`, shared by every worker process and rx-key: two different keys
for one new id sent at once get one winner, and the pending cap is counted and written under
the same lock.  Reads take no lock (files are replaced atomically)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import fcntl
import fnmatch
import os
import stat
from pathlib import Path
from typing import Callable, Hashable, Iterator, TypeVar

from rx.master.store.base import KEY_STATES, Decision, KeyInfo, KeyStoreError
from rx.transport.crypto import ensure_private_dir
from rx.transport.ids import validate_minion_id

T = TypeVar("T")

DIRS = {"accepted": "minions", "pending": "minions_pre", "rejected": "minions_rejected", "denied": "minions_denied"}
MASTER_PUB = "master.pub"
LOCK_FILE = ".keys.lock"


class FileKeyStore:
    def __init__(self, pki_dir: str | Path) -> None:
        self.root = Path(pki_dir)
        self.dirs = {state: self.root / name for state, name in DIRS.items()}
        self._by_age: list[tuple[int, str]] = []

    async def prepare(self) -> None:
        ensure_private_dir(self.root)
        for d in self.dirs.values():
            ensure_private_dir(d)
        with self._lock():
            pass

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """Hold the key store's exclusive lock (blocks: call it from a thread)."""
        path = self.root / LOCK_FILE
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise KeyStoreError(f"cannot open the key store lock {path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    async def _under_lock(self, fn: Callable[..., T], *args: object) -> T:
        def locked() -> T:
            with self._lock():
                return fn(*args)
        return await asyncio.to_thread(locked)

    @staticmethod
    def _check_id(minion_id: str) -> None:
        why = validate_minion_id(minion_id)
        if why:
            raise KeyStoreError(f"invalid minion id {minion_id!r}: {why}")

    def _path(self, state: str, minion_id: str) -> Path:
        self._check_id(minion_id)
        base = self.dirs[state]
        path = base / minion_id
        if path.resolve().parent != base.resolve():
            raise KeyStoreError(f"minion id {minion_id!r} escapes the key directory")
        return path

    def _read(self, state: str, minion_id: str) -> bytes | None:
        """Hot path (every `_auth`): the id is validated, so a plain join stays in the directory, and the file is
        opened without following a symlink (`_path`'s two realpath walks were ~5% of a worker in an auth storm)."""
        self._check_id(minion_id)
        try:
            fd = os.open(os.path.join(self.dirs[state], minion_id), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise KeyStoreError(f"minion id {minion_id!r} escapes the key directory (its key file is a symlink)"
                                    ) from None
            raise
        with os.fdopen(fd, "rb") as f:
            raw = f.read()
        try:
            return base64.b64decode(raw.strip(), validate=True)
        except ValueError:
            raise KeyStoreError(f"{state} key for {minion_id!r} is corrupt") from None

    async def read(self, state: str, minion_id: str) -> bytes | None:
        return self._read(state, minion_id)

    async def is_accepted(self, minion_id: str) -> bool:
        """Hot path (every sealed request): one lstat; the id is validated, so a plain join stays inside."""
        if validate_minion_id(minion_id):
            return False
        try:
            return stat.S_ISREG(os.lstat(os.path.join(self.dirs["accepted"], minion_id)).st_mode)
        except OSError:
            return False

    def _write(self, state: str, minion_id: str, public: bytes) -> None:
        path = self._path(state, minion_id)
        tmp = path.with_name(f".tmp.{os.getpid()}.{os.urandom(8).hex()}")  # short: ids may be 255 chars
        tmp.write_bytes(base64.b64encode(public) + b"\n")
        os.replace(tmp, path)

    async def write(self, state: str, minion_id: str, public: bytes) -> None:
        await self._under_lock(self._write, state, minion_id, public)

    def _remove(self, state: str, minion_id: str) -> bool:
        try:
            self._path(state, minion_id).unlink()
            return True
        except FileNotFoundError:
            return False

    async def remove(self, state: str, minion_id: str) -> bool:
        return await self._under_lock(self._remove, state, minion_id)

    def _ids(self, state: str) -> list[str]:
        try:
            return sorted(n for n in os.listdir(self.dirs[state]) if not n.startswith("."))
        except FileNotFoundError:
            return []

    async def ids(self, state: str) -> list[str]:
        return await asyncio.to_thread(self._ids, state)

    async def find(self, pattern: str, states: tuple[str, ...] = KEY_STATES) -> list[KeyInfo]:
        def scan() -> list[KeyInfo]:
            out = []
            for state in states:
                for minion_id in self._ids(state):
                    if fnmatch.fnmatchcase(minion_id, pattern):
                        public = self._read(state, minion_id)
                        if public is not None:
                            out.append(KeyInfo(minion_id, state, public))
            return out
        return await asyncio.to_thread(scan)

    def _move(self, info: KeyInfo, to_state: str) -> None:
        self._write(to_state, info.id, info.public)
        if info.state != to_state:
            self._remove(info.state, info.id)
        if to_state == "accepted":
            self._remove("denied", info.id)

    async def move(self, info: KeyInfo, to_state: str) -> None:
        await self._under_lock(self._move, info, to_state)

    async def decide(self, minion_id: str, public: bytes, auto_accept: bool, max_pending: int = 0) -> Decision:
        """A key that differs from the accepted or pending one for the same id is never swapped in: it
        is filed as denied for a person to look at.  With `max_pending`, a new pending key beyond that
        many evicts the oldest ones (a pending key that asks again is made young), so a flood of
        made-up ids neither fills the disk nor locks out a genuine minion, which files again at its
        next retry.  An accepted minion presenting its key (every re-auth) is answered without the lock."""
        if self._read("accepted", minion_id) == public:
            return Decision("accepted")
        return await self._under_lock(self._decide, minion_id, public, auto_accept, max_pending)

    def _decide(self, minion_id: str, public: bytes, auto_accept: bool, max_pending: int) -> Decision:
        accepted = self._read("accepted", minion_id)
        if accepted is not None:
            if accepted == public:
                return Decision("accepted")
            self._write("denied", minion_id, public)
            return Decision("denied")
        if self._read("rejected", minion_id) is not None:
            return Decision("rejected")
        pending = self._read("pending", minion_id)
        if pending is not None and pending != public:
            self._write("denied", minion_id, public)
            return Decision("denied")
        if auto_accept:
            self._write("accepted", minion_id, public)
            self._remove("pending", minion_id)
            return Decision("accepted")
        if pending is not None:
            os.utime(self._path("pending", minion_id))
            return Decision("pending")
        evicted = self._make_room(max_pending - 1) if max_pending else ()
        self._write("pending", minion_id, public)
        return Decision("pending", evicted)

    def _make_room(self, keep: int) -> tuple[KeyInfo, ...]:
        """Remove the oldest pending keys (by mtime) until at most `keep` are left."""
        excess = sum(1 for n in os.listdir(self.dirs["pending"]) if not n.startswith(".")) - keep
        evicted = []
        while excess > 0 and (name := self._oldest_pending()) is not None:
            try:
                public = self._read("pending", name) or b""
                removed = self._remove("pending", name)
            except KeyStoreError:  # a file put there by hand (a symlink out, say): not ours to remove
                continue
            if removed:
                evicted.append(KeyInfo(name, "pending", public))
                excess -= 1
        return tuple(evicted)

    def _oldest_pending(self) -> str | None:
        """The oldest pending key's id, from this process's list of pending keys by age (rebuilt when used
        up).  Called under the lock, so every key missing from the list was filed or made young after
        the list was built: the first listed key still there with the mtime the list holds is the oldest."""
        for rescan in (False, True):
            if rescan:
                self._by_age = self._pending_by_age()
            while self._by_age:
                mtime, name = self._by_age.pop()
                try:
                    if os.lstat(os.path.join(self.dirs["pending"], name)).st_mtime_ns == mtime:
                        return name
                except FileNotFoundError:
                    continue
        return None

    def _pending_by_age(self) -> list[tuple[int, str]]:
        """(mtime, id) of every pending key, youngest first (so pop() gives the oldest)."""
        out = []
        with os.scandir(self.dirs["pending"]) as it:
            for entry in it:
                if validate_minion_id(entry.name) is None:
                    try:
                        out.append((entry.stat(follow_symlinks=False).st_mtime_ns, entry.name))
                    except FileNotFoundError:
                        continue
        return sorted(out, reverse=True)

    async def accepted_version(self) -> Hashable:
        try:
            return os.stat(self.dirs["accepted"]).st_mtime_ns
        except FileNotFoundError:
            return None

    async def master_public(self) -> bytes | None:
        try:
            return (self.root / MASTER_PUB).read_bytes()
        except FileNotFoundError:
            return None
