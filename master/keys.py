"""The master's store of minion keys: accepted, pending, rejected, denied.

One file per minion id per state directory, holding the minion's raw Ed25519
public key in base64.  Every path is built from a validated id and checked to
stay inside its directory.
"""

from __future__ import annotations

import base64
import fnmatch
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from rx.transport.ids import validate_minion_id
from rx.transport.crypto import ensure_private_dir, fingerprint

STATES = ("accepted", "pending", "rejected", "denied")
_DIRS = {"accepted": "minions", "pending": "minions_pre", "rejected": "minions_rejected", "denied": "minions_denied"}


class KeyError_(Exception):
    """A key operation that cannot be done (bad id, unreadable key)."""


class PendingFull(KeyError_):
    """Too many keys are pending already: a new one is not filed."""


@dataclass(frozen=True)
class KeyInfo:
    id: str
    state: str
    public: bytes

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public)


class KeyStore:
    def __init__(self, pki_dir: str | Path) -> None:
        self.root = Path(pki_dir)
        self.dirs = {state: self.root / name for state, name in _DIRS.items()}

    def ensure(self) -> None:
        ensure_private_dir(self.root)
        for d in self.dirs.values():
            ensure_private_dir(d)

    def _path(self, state: str, minion_id: str) -> Path:
        why = validate_minion_id(minion_id)
        if why:
            raise KeyError_(f"invalid minion id {minion_id!r}: {why}")
        base = self.dirs[state]
        path = base / minion_id
        if path.resolve().parent != base.resolve():
            raise KeyError_(f"minion id {minion_id!r} escapes the key directory")
        return path

    def read(self, state: str, minion_id: str) -> bytes | None:
        try:
            return base64.b64decode(self._path(state, minion_id).read_bytes().strip(), validate=True)
        except FileNotFoundError:
            return None
        except ValueError:
            raise KeyError_(f"{state} key for {minion_id!r} is corrupt") from None

    def is_accepted(self, minion_id: str) -> bool:
        """Hot path (every sealed request): the id is validated, so a plain join stays in the directory."""
        if validate_minion_id(minion_id):
            return False
        try:
            return stat.S_ISREG(os.lstat(os.path.join(self.dirs["accepted"], minion_id)).st_mode)
        except OSError:
            return False

    def write(self, state: str, minion_id: str, public: bytes) -> None:
        path = self._path(state, minion_id)
        tmp = path.with_name(f".tmp.{os.getpid()}.{os.urandom(8).hex()}")  # short: ids may be 255 chars
        tmp.write_bytes(base64.b64encode(public) + b"\n")
        os.replace(tmp, path)

    def remove(self, state: str, minion_id: str) -> bool:
        try:
            self._path(state, minion_id).unlink()
            return True
        except FileNotFoundError:
            return False

    def ids(self, state: str) -> list[str]:
        try:
            return sorted(n for n in os.listdir(self.dirs[state]) if not n.startswith("."))
        except FileNotFoundError:
            return []

    def listing(self) -> dict[str, list[str]]:
        return {state: self.ids(state) for state in STATES}

    def find(self, pattern: str, states: tuple[str, ...] = STATES) -> list[KeyInfo]:
        """Keys whose id matches the glob `pattern`, in the given states."""
        out = []
        for state in states:
            for minion_id in self.ids(state):
                if fnmatch.fnmatchcase(minion_id, pattern):
                    public = self.read(state, minion_id)
                    if public is not None:
                        out.append(KeyInfo(minion_id, state, public))
        return out

    def move(self, info: KeyInfo, to_state: str) -> None:
        """Move a key between states (accept, reject)."""
        self.write(to_state, info.id, info.public)
        if info.state != to_state:
            self.remove(info.state, info.id)
        if to_state == "accepted":
            self.remove("denied", info.id)

    def decide(self, minion_id: str, public: bytes, auto_accept: bool, max_pending: int = 0) -> str:
        """What an `_auth` from (id, key) gets, filing unknown keys as pending.

        A key that differs from the accepted or pending one for the same id is
        never swapped in: it is filed as denied for a person to look at.  With
        `max_pending`, a new key beyond that many pending ones raises PendingFull
        (so a flood of made-up ids cannot fill the disk).
        """
        accepted = self.read("accepted", minion_id)
        if accepted is not None:
            if accepted == public:
                return "accepted"
            self.write("denied", minion_id, public)
            return "denied"
        if self.read("rejected", minion_id) is not None:
            return "rejected"
        pending = self.read("pending", minion_id)
        if pending is not None and pending != public:
            self.write("denied", minion_id, public)
            return "denied"
        if auto_accept:
            self.write("accepted", minion_id, public)
            self.remove("pending", minion_id)
            return "accepted"
        if pending is None:
            if max_pending and len(self.ids("pending")) >= max_pending:
                raise PendingFull(f"{max_pending} keys are already pending (max_pending_keys); "
                                  f"not filing {minion_id!r}: accept or delete pending keys with rx-key")
            self.write("pending", minion_id, public)
        return "pending"
