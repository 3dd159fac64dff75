"""The master's session secret and key serial (the source of all session keys).

Stored in `<pki_dir>/session` (0600).  Bumping the serial revokes every publish
and request key at once; minions notice and re-authenticate.  Readers reload
when the file changes, so every process sees a rotation within one request.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from rx.transport.codec import decode, encode
from rx.transport.crypto import KEY_BYTES, write_secret
from rx.transport.handshake import publish_key


class SessionState:
    def __init__(self, pki_dir: str | Path) -> None:
        self.path = Path(pki_dir) / "session"
        self._stamp: tuple[int, int] | None = None
        self.secret = b""
        self.serial = 0
        self.publish_key = b""

    def load_or_create(self) -> None:
        with self._locked():
            if not self.path.exists():
                # a random first serial: minions of an earlier session (same master key, lost session
                # file) see a different serial and re-authenticate at once
                first = int.from_bytes(os.urandom(4), "big") | 1
                write_secret(self.path, encode({"secret": os.urandom(KEY_BYTES), "serial": first}))
        self.refresh(force=True)

    def refresh(self, force: bool = False) -> None:
        """Re-read the file if it changed since last read (one stat per call)."""
        st = self.path.stat()
        stamp = (st.st_mtime_ns, st.st_ino)
        if not force and stamp == self._stamp:
            return
        data = decode(self.path.read_bytes())
        self.secret, self.serial = data["secret"], data["serial"]
        self.publish_key = publish_key(self.secret, self.serial)
        self._stamp = stamp

    def rotate(self) -> int:
        """Advance the serial; returns the new one."""
        with self._locked():
            data = decode(self.path.read_bytes())
            data["serial"] += 1
            write_secret(self.path, encode(data))
        self.refresh(force=True)
        return self.serial

    def _locked(self):
        return _FileLock(self.path.with_name(".session.lock"))


class _FileLock:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> None:
        self.fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
