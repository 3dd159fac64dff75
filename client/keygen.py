"""`rx-key --gen-keys NAME --gen-keys-dir DIR`: a minion key pair made ahead of time, so automation can
accept it on the master before the minion first starts (Salt's preseeding).

Two files, each in the format of the place it is copied to:

- `NAME.key`: the raw Ed25519 private key (0600), the minion's `<pki_dir>/minion.key`;
- `NAME.pub`: the public key in base64 on one line, the master's `<pki_dir>/minions/NAME` (an accepted
  key in the key store's layout).

Never overwrites: run again, it keeps a pair that is already there and whole (and says so), and refuses a
half or mismatched one."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path

from rx.transport.crypto import CryptoError, Identity, write_secret
from rx.transport.ids import validate_minion_id


class KeyGenError(Exception):
    pass


@dataclass(frozen=True)
class KeyPair:
    private: Path
    public: Path
    fingerprint: str
    made: bool
    """False when a whole pair was already there and is kept."""


def public_text(public: bytes) -> bytes:
    """A public key as the master's key store keeps it (and `NAME.pub` holds it)."""
    return base64.b64encode(public) + b"\n"


def gen_keys(name: str, directory: str | Path = ".") -> KeyPair:
    why = validate_minion_id(name)
    if why:
        raise KeyGenError(f"--gen-keys {name!r}: not a minion id: {why}")
    d = Path(directory)
    if not d.exists():
        d.mkdir(mode=0o700, parents=True)
    elif not d.is_dir():
        raise KeyGenError(f"--gen-keys-dir {str(d)!r} is not a directory")
    private, public = d / f"{name}.key", d / f"{name}.pub"
    if private.exists() or public.exists():
        return KeyPair(private, public, _existing(private, public), made=False)
    ident = Identity.generate()
    write_secret(private, ident.private_bytes())
    tmp = public.with_name(f".{public.name}.{os.getpid()}.tmp")
    tmp.write_bytes(public_text(ident.public))
    os.replace(tmp, public)
    return KeyPair(private, public, ident.fingerprint, made=True)


def _existing(private: Path, public: Path) -> str:
    """The fingerprint of a whole pair already in place; KeyGenError for half a pair or a mismatched one."""
    if not (private.is_file() and public.is_file()):
        have, missing = (private, public) if private.exists() else (public, private)
        raise KeyGenError(f"{have} exists but {missing} does not: move it away, or complete the pair by hand")
    try:
        ident = Identity.from_bytes(private.read_bytes())
    except CryptoError as exc:
        raise KeyGenError(f"{private} exists and is not an rx private key ({exc})") from None
    if public.read_bytes().strip() != public_text(ident.public).strip():
        raise KeyGenError(f"{public} exists and is not the public key of {private}")
    return ident.fingerprint
