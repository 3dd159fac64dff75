"""The auth handshake and session-key derivation, sans-IO.

Minion -> master (clear `_auth`): id, long-term Ed25519 public key, an X25519
ephemeral key, timestamp and nonce, signed with the minion's key.  The master
answers with a body signed by its own key; when the minion is accepted the body
carries the publish key and the minion's request key, sealed with a key derived
from an X25519 exchange of both ephemeral keys (forward secrecy).

Session keys are derived, not stored: publish key = HKDF(secret, serial) and
request key = HKDF(secret, serial, id), so every MWorker can check any minion
without shared state, and bumping the serial revokes them all at once.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from rx.transport.codec import DecodeError, decode, encode
from rx.transport.crypto import Aead, CryptoError, Ephemeral, Identity, hkdf, verify
from rx.transport.keyprint import fingerprint, plain_fingerprint
from rx.transport.authmsgs import AuthBody, AuthReply, AuthRequest
from rx.transport.errors import ProtocolError
from rx.transport.fields import serial_bytes


class AuthError(Exception):
    """The handshake failed; `reason` is machine-readable."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def publish_key(secret: bytes, serial: int) -> bytes:
    return hkdf(secret, b"rx/pub-key\0" + serial_bytes(serial))


def request_key(secret: bytes, serial: int, minion_id: str) -> bytes:
    return hkdf(secret, b"rx/req-key\0" + serial_bytes(serial) + minion_id.encode())


def private_publish_key(req_key: bytes) -> bytes:
    """The key of a minion's private publications, derived from its request key: only the master and
    that minion hold it, and the handshake delivers nothing new."""
    return hkdf(req_key, b"rx/private-pub")


def _keys_info(minion_id: str) -> bytes:
    return b"rx/auth-keys\0" + minion_id.encode()


# ---------------------------------------------------------------- minion side

@dataclass
class PendingAuth:
    """What the minion remembers between sending `_auth` and reading the answer."""

    request: AuthRequest
    ephemeral: Ephemeral


@dataclass(frozen=True)
class Session:
    """What an accepted minion holds after a handshake."""

    master_pub: bytes
    serial: int
    publish_key: bytes
    request_key: bytes
    master_offset: float
    """master clock minus minion clock at auth time, for freshness checks"""
    publish_port: int = 0
    """the publish port the master announced (0: it did not say)"""


@dataclass(frozen=True)
class AuthOutcome:
    status: str
    master_pub: bytes
    session: Session | None = None
    replaces_pin: bool = False
    """the master's key differs from the pinned one but matches master_finger: pin it instead"""


def start_auth(identity: Identity, minion_id: str, now: float | None = None) -> PendingAuth:
    eph = Ephemeral()
    unsigned = AuthRequest(id=minion_id, pub=identity.public, eph=eph.public, ts=now if now is not None else time.time(),
                           nonce=os.urandom(16), sig=b"\0" * 64)
    req = AuthRequest(**{**unsigned.__dict__, "sig": identity.sign(unsigned.signed_bytes())})
    return PendingAuth(request=req, ephemeral=eph)


def finish_auth(pending: PendingAuth, reply_obj: object, pinned_master_pub: bytes | None,
                master_finger: str = "") -> AuthOutcome:
    """Check the master's signed answer and, if accepted, open the session keys.

    A configured `master_finger` always decides: a key that does not match it is refused even if it
    is the pinned one, and a matching key replaces a different pin (`replaces_pin`).  Without it,
    `pinned_master_pub` (the key seen on first contact) decides: a different key is refused.
    """
    try:
        reply = AuthReply.from_wire(reply_obj)
    except ProtocolError as exc:
        raise AuthError("malformed", f"malformed auth reply: {exc}") from None
    pinned = pinned_master_pub is not None and reply.master_pub == pinned_master_pub
    if master_finger and plain_fingerprint(fingerprint(reply.master_pub)) != master_finger:
        why = " (it is the pinned key in master.pub, but master_finger wins)" if pinned else ""
        raise AuthError("master_finger_mismatch",
                        f"the master's key {fingerprint(reply.master_pub)} does not match master_finger{why}; "
                        "refusing it")
    if not master_finger and pinned_master_pub is not None and not pinned:
        raise AuthError("master_key_changed",
                        f"the master's key changed (now {fingerprint(reply.master_pub)}); refusing it. If this is "
                        "intended, remove the cached master.pub on the minion")
    replaces_pin = pinned_master_pub is not None and not pinned
    try:
        verify(reply.master_pub, reply.sig, b"rx/auth-reply\0" + reply.body)
        body = AuthBody.from_wire(decode(reply.body))
    except (CryptoError, DecodeError, ProtocolError) as exc:
        raise AuthError("bad_signature", f"auth reply does not verify: {exc}") from None
    if body.id != pending.request.id or body.nonce != pending.request.nonce:
        raise AuthError("mismatch", "auth reply answers another request")
    if body.status != "accepted":
        return AuthOutcome(status=body.status, master_pub=reply.master_pub, replaces_pin=replaces_pin)
    try:
        box = Aead(pending.ephemeral.shared_key(body.eph, _keys_info(body.id)))
        keys = decode(box.open(body.keys_nonce, body.keys_ct, b"rx/auth-keys"))
        pub_key, req_key = keys["pub_key"], keys["req_key"]
        if not (isinstance(pub_key, bytes) and isinstance(req_key, bytes) and len(pub_key) == len(req_key) == 32):
            raise ProtocolError("bad session keys")
    except (CryptoError, DecodeError, ProtocolError, KeyError, TypeError) as exc:
        raise AuthError("bad_keys", f"cannot open session keys: {exc}") from None
    return AuthOutcome(status="accepted", master_pub=reply.master_pub,
                       session=Session(master_pub=reply.master_pub, serial=body.serial, publish_key=pub_key,
                                       request_key=req_key, master_offset=body.now - time.time(),
                                       publish_port=body.publish_port), replaces_pin=replaces_pin)


# ---------------------------------------------------------------- master side

def check_auth_request(load: object, now: float, window: float) -> AuthRequest:
    """Parse and verify a minion's `_auth` load: right shape, fresh, signed by the key it presents."""
    try:
        req = AuthRequest.from_wire(load)
    except ProtocolError as exc:
        raise AuthError("malformed", f"malformed auth request: {exc}") from None
    if not abs(now - req.ts) <= window:  # also refuses NaN
        raise AuthError("stale", f"auth request timestamp is {now - req.ts:+.0f}s off (window {window:.0f}s)")
    try:
        verify(req.pub, req.sig, req.signed_bytes())
    except CryptoError:
        raise AuthError("bad_signature", "auth request signature does not verify") from None
    return req


def answer_auth(master: Identity, req: AuthRequest, status: str, secret: bytes, serial: int,
                publish_port: int = 0) -> AuthReply:
    """Build the master's signed answer; session keys (and the publish port) only go to an accepted minion.
    AuthError if the minion's ephemeral key cannot be used (check_auth_request already refuses the known
    low-order keys)."""
    if status == "accepted":
        eph = Ephemeral()
        try:
            box = Aead(eph.shared_key(req.eph, _keys_info(req.id)))
        except CryptoError as exc:
            raise AuthError("malformed", f"malformed auth request: eph: {exc}") from None
        keys = encode({"pub_key": publish_key(secret, serial), "req_key": request_key(secret, serial, req.id)})
        keys_nonce, keys_ct = box.seal(keys, b"rx/auth-keys")
        body = AuthBody(status=status, id=req.id, nonce=req.nonce, serial=serial, now=time.time(), eph=eph.public,
                        keys_nonce=keys_nonce, keys_ct=keys_ct, publish_port=publish_port)
    else:
        body = AuthBody(status=status, id=req.id, nonce=req.nonce, now=time.time())
    raw = encode(body.to_wire())
    return AuthReply(master_pub=master.public, body=raw, sig=master.sign(b"rx/auth-reply\0" + raw))
