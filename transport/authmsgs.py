"""Messages of the `_auth` handshake (the logic is in rx.transport.handshake)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rx.transport import fields as f
from rx.transport.codec import encode
from rx.transport.errors import ProtocolError
from rx.transport.sizes import PUBLIC_KEY_BYTES, SIGNATURE_BYTES

AUTH_STATUSES = ("accepted", "pending", "rejected", "denied")
AUTH_NONCE_BYTES = 16

_P25519 = 2**255 - 19
X25519_LOW_ORDER = frozenset({
    0, 1, _P25519 - 1, _P25519, _P25519 + 1,
    325606250916557431795983626356110631294008115727848805560023387167927233504,
    39382357235489614581723060781553021112529911719440698176882885853963445705823,
})
"""The u-coordinates (bit 255 ignored, as X25519 does) of the points of order 1, 2, 4 and 8 on
Curve25519 and their non-canonical encodings: an exchange with any of them gives the all-zero
secret, so they are refused when the request is parsed (the list libsodium checks)."""


def x25519_public(d: dict, key: str) -> bytes:
    """A 32-byte X25519 public key that is not a low-order point."""
    value = f.get(d, key, bytes, size=PUBLIC_KEY_BYTES)
    if int.from_bytes(value, "little") & ((1 << 255) - 1) in X25519_LOW_ORDER:
        raise ProtocolError("not a usable X25519 public key (a low-order point)", key)
    return value


@dataclass(frozen=True)
class AuthRequest:
    """A minion's signed proof of its key: id, long-term key, ephemeral X25519 key, time, nonce."""

    id: str
    pub: bytes
    eph: bytes
    ts: float
    nonce: bytes
    sig: bytes

    def signed_bytes(self) -> bytes:
        return b"rx/auth\0" + encode([self.id, self.pub, self.eph, self.ts, self.nonce])

    def to_wire(self) -> dict:
        return {"id": self.id, "pub": self.pub, "eph": self.eph, "ts": self.ts, "nonce": self.nonce, "sig": self.sig}

    @classmethod
    def from_wire(cls, obj: Any) -> "AuthRequest":
        d = f.as_map(obj, "auth")
        return cls(id=f.minion_id(d), pub=f.get(d, "pub", bytes, size=PUBLIC_KEY_BYTES),
                   eph=x25519_public(d, "eph"), ts=f.number(d, "ts"),
                   nonce=f.get(d, "nonce", bytes, size=AUTH_NONCE_BYTES),
                   sig=f.get(d, "sig", bytes, size=SIGNATURE_BYTES))


@dataclass(frozen=True)
class AuthReply:
    """The master's signed answer; `body` is the signed msgpack bytes of an AuthBody."""

    master_pub: bytes
    body: bytes
    sig: bytes

    def to_wire(self) -> dict:
        return {"ok": True, "master_pub": self.master_pub, "body": self.body, "sig": self.sig}

    @classmethod
    def from_wire(cls, obj: Any) -> "AuthReply":
        d = f.as_map(obj, "auth reply")
        return cls(master_pub=f.get(d, "master_pub", bytes, size=PUBLIC_KEY_BYTES), body=f.get(d, "body", bytes),
                   sig=f.get(d, "sig", bytes, size=SIGNATURE_BYTES))


@dataclass(frozen=True)
class AuthBody:
    """What the master signs: the minion's status and, when accepted, the sealed session keys and
    the publish port (so a minion needs only `master` and `master_port`)."""

    status: str
    id: str
    nonce: bytes
    serial: int = 0
    now: float = 0.0
    eph: bytes = b""
    keys_nonce: bytes = b""
    keys_ct: bytes = b""
    publish_port: int = 0

    def to_wire(self) -> dict:
        return {"status": self.status, "id": self.id, "nonce": self.nonce, "serial": self.serial,
                "now": self.now, "eph": self.eph, "keys_nonce": self.keys_nonce, "keys_ct": self.keys_ct,
                "publish_port": self.publish_port}

    @classmethod
    def from_wire(cls, obj: Any) -> "AuthBody":
        d = f.as_map(obj, "auth body")
        status = f.get(d, "status", str)
        if status not in AUTH_STATUSES:
            raise ProtocolError(f"unknown status {status!r}", "status")
        return cls(status=status, id=f.get(d, "id", str), nonce=f.get(d, "nonce", bytes), serial=f.serial(d),
                   now=f.number(d, "now"), eph=f.get(d, "eph", bytes), keys_nonce=f.get(d, "keys_nonce", bytes),
                   keys_ct=f.get(d, "keys_ct", bytes), publish_port=f.integer(d, "publish_port", 0, 65535, default=0))
