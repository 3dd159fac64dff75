"""The local session store: the master's session secret and key serial in `<pki_dir>/session`
(0600).  Bumping the serial revokes every publish and request key at once; minions notice and
re-authenticate.  Readers re-read the file when it changed (one stat per call), so every process
sees a rotation within one request."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from rx.master.store.base import SessionKeys, StoreError
from rx.transport.codec import DecodeError, decode, encode
from rx.transport.crypto import write_secret
from rx.transport.handshake import publish_key
from rx.transport.sizes import KEY_BYTES

SESSION_FILE = "session"


class FileSessionStore:
    def __init__(self, pki_dir: str | Path) -> None:
        self.path = Path(pki_dir) / SESSION_FILE
        self._stamp: tuple[int, int] | None = None
        self._keys: SessionKeys | None = None

    async def prepare(self) -> None:
        with _Lock(self.path.with_name(".session.lock")):
            if not self.path.exists():
                # a random first serial: minions of an earlier session (same master key, lost session
                # file) see a different serial and re-authenticate at once
                first = int.from_bytes(os.urandom(4), "big") | 1
                write_secret(self.path, encode({"secret": os.urandom(KEY_BYTES), "serial": first}))

    async def current(self) -> SessionKeys:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            raise StoreError(f"no session file at {self.path}: has rx-master been started?") from None
        stamp = (st.st_mtime_ns, st.st_ino)
        if self._keys is None or stamp != self._stamp:
            secret, serial = _parse(self.path.read_bytes(), self.path)
            self._keys = SessionKeys(secret, serial, publish_key(secret, serial), st.st_mtime)
            self._stamp = stamp
        return self._keys

    async def rotate(self) -> SessionKeys:
        """A new serial; with no session yet (keys changed before the master first ran), a first one."""
        if not self.path.exists():
            await self.prepare()
            return await self.current()
        with _Lock(self.path.with_name(".session.lock")):
            secret, serial = _parse(self.path.read_bytes(), self.path)
            write_secret(self.path, encode({"secret": secret, "serial": serial + 1}))
        return await self.current()


def _parse(raw: bytes, path: Path) -> tuple[bytes, int]:
    try:
        data = decode(raw)
        secret, serial = data["secret"], data["serial"]
    except (DecodeError, KeyError, TypeError):
        raise StoreError(f"session file {path} is corrupt") from None
    if not isinstance(secret, bytes) or len(secret) != KEY_BYTES or not isinstance(serial, int):
        raise StoreError(f"session file {path} is corrupt")
    return secret, serial


class _Lock:
    """An exclusive flock on a side file, so two rotations never lose one."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> None:
        self.fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
