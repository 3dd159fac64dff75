"""Sealing and opening authenticated messages, sans-IO.

Requests from minions are AES-256-GCM under the per-minion request key, with the
minion id and key serial bound in as associated data, so the id the master acts
on is the one the key proves.  Publications are sealed with the shared publish
key, or (private publications) once per recipient under a key derived from its
request key, and signed by the master, so holding the publish key is not enough
to forge a job, nor to read a private one.
"""

from __future__ import annotations

import time
from typing import Any

from rx.transport.codec import DecodeError, decode, encode
from rx.transport.crypto import Aead, CryptoError, Identity, Verifier
from rx.transport.handshake import request_key
from rx.transport.errors import ProtocolError
from rx.transport.messages import (AesRequest, Job, Publication, SecureCommand, publication_aad, reply_aad,
                                   request_aad)
from rx.transport.replies import SealedReply


PUBLICATION_MAX_OBJECTS = 16
"""A publication is a map of 4 scalars (9 objects); the sealed job inside is decoded only after the
master's signature checks out."""


class StaleSerial(Exception):
    """Sealed under a key serial the receiver does not hold: re-authenticate."""

    def __init__(self, theirs: int, ours: int) -> None:
        super().__init__(f"key serial {theirs} (ours {ours})")
        self.theirs = theirs
        self.ours = ours


class Rejected(Exception):
    """A sealed message that does not open, verify or parse."""


class OtherRecipient(Exception):
    """A private publication addressed to another minion (it shares our topic bucket)."""


class BadJob(Exception):
    """A publication that verifies and opens, but whose job is not a valid job."""


class Malformed(Exception):
    """A sealed request that authenticates but whose content is not a valid command (too large, wrong
    shape): the sender is who it claims to be, so it gets a sealed error rather than 'authenticate again'."""

    def __init__(self, key: bytes, message: str) -> None:
        super().__init__(message)
        self.key = key


def seal_request(req_key: bytes, minion_id: str, serial: int, cmd: str, load: dict) -> AesRequest:
    """The sealed request; keep it: its nonce is what the reply must be bound to."""
    plain = encode(SecureCommand(cmd=cmd, ts=time.time(), load=load).to_wire())
    nonce, ct = Aead(req_key).seal(plain, request_aad(minion_id, serial))
    return AesRequest(id=minion_id, serial=serial, nonce=nonce, ct=ct)


class RequestKeys:
    """The request keys derived lately (deriving one costs more than opening a small request), per (serial,
    id) under one session secret: a new secret, or more than KEYS_MAX of them, starts the table over."""

    KEYS_MAX = 50_000

    def __init__(self) -> None:
        self._secret = b""
        self._keys: dict[tuple[int, str], bytes] = {}

    def get(self, secret: bytes, serial: int, minion_id: str) -> bytes:
        if secret != self._secret or len(self._keys) >= self.KEYS_MAX:
            self._secret, self._keys = secret, {}
        key = self._keys.get((serial, minion_id))
        if key is None:
            key = self._keys[(serial, minion_id)] = request_key(secret, serial, minion_id)
        return key


def open_request(secret: bytes, serial: int, req: AesRequest, now: float, window: float,
                 keys: RequestKeys | None = None) -> tuple[bytes, SecureCommand]:
    """Master side: returns (request key, command). The id is proven by the key that opened it.  `keys`:
    where the request keys derived before are kept."""
    if req.serial != serial:
        raise StaleSerial(req.serial, serial)
    key = keys.get(secret, serial, req.id) if keys is not None else request_key(secret, serial, req.id)
    try:
        plain = Aead(key).open(req.nonce, req.ct, request_aad(req.id, serial))
    except CryptoError as exc:
        raise Rejected(str(exc)) from None
    try:
        cmd = SecureCommand.from_wire(decode(plain))
    except (DecodeError, ProtocolError) as exc:
        raise Malformed(key, str(exc)) from None
    if not abs(now - cmd.ts) <= window:  # also refuses NaN
        raise Rejected(f"stale request ({now - cmd.ts:+.0f}s)")
    return key, cmd


def seal_reply(key: bytes, req: AesRequest, serial: int, reply: dict) -> dict:
    """Seal `reply` (a reply's wire map) for the minion, bound to the request it answers."""
    nonce, ct = Aead(key).seal(encode(reply), reply_aad(req.id, serial, req.nonce))
    return SealedReply(nonce=nonce, ct=ct).to_wire()


def open_reply(key: bytes, req: AesRequest, obj: Any) -> Any:
    """The plaintext reply to `req`; Rejected if it is not sealed, or sealed for another request."""
    try:
        sealed = SealedReply.from_wire(obj)
        return decode(Aead(key).open(sealed.nonce, sealed.ct, reply_aad(req.id, req.serial, req.nonce)))
    except (ProtocolError, CryptoError, DecodeError) as exc:
        raise Rejected(str(exc)) from None


def seal_publication(master: Identity, key: bytes, serial: int, job: Job, to: str = "") -> bytes:
    """A signed publication: under the shared publish key, or, `to` one minion, under its private
    publish key (handshake.private_publish_key)."""
    nonce, ct = Aead(key).seal(encode(job.to_wire()), publication_aad(serial, to))
    pub = Publication(serial=serial, nonce=nonce, ct=ct, sig=b"", to=to)
    return encode({**pub.to_wire(), "sig": master.sign(pub.signed_bytes())})


def parse_publication(frame: bytes, master: Verifier, recipient: str = "") -> Publication:
    """Decode a PUB frame and check the master's signature (before any decryption).  A private
    publication to another minion than `recipient` raises OtherRecipient before the signature check."""
    try:
        pub = Publication.from_wire(decode(frame, max_objects=PUBLICATION_MAX_OBJECTS))
    except (DecodeError, ProtocolError) as exc:
        raise Rejected(str(exc)) from None
    if pub.to and pub.to != recipient:
        raise OtherRecipient(pub.to)
    try:
        master.verify(pub.sig, pub.signed_bytes())
    except CryptoError as exc:
        raise Rejected(str(exc)) from None
    return pub


def open_publication(pub: Publication, key: bytes, serial: int) -> Job:
    """The job, opened with `key` (the publish key, or for a private publication the recipient's private
    publish key); StaleSerial or Rejected (another key: worth a re-auth), or BadJob (it opened, but the job
    inside is malformed: never worth one)."""
    if pub.serial != serial:
        raise StaleSerial(pub.serial, serial)
    try:
        plain = Aead(key).open(pub.nonce, pub.ct, publication_aad(serial, pub.to))
    except CryptoError as exc:
        raise Rejected(str(exc)) from None
    try:
        return Job.from_wire(decode(plain))
    except (DecodeError, ProtocolError) as exc:
        raise BadJob(str(exc)) from None
