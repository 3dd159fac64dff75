"""Keys and primitives: Ed25519 identities, X25519 + HKDF key delivery, AES-256-GCM.

Ed25519 and X25519 come from libsodium (PyNaCl): it verifies a signature in half the time OpenSSL takes here and
costs a process ~1 MB where cryptography costs ~9 MB.  AES-256-GCM comes from cryptography (OpenSSL), several
times faster than libsodium's, except in a process that called `use_sodium_aead()` (rx-minion: it then never
loads cryptography at all).  HKDF-SHA256 is RFC 5869 on the standard library's HMAC.  Without PyNaCl, or on a
CPU libsodium's AES-GCM does not run on, cryptography serves what libsodium cannot; both produce the same bytes
(tests/unit/test_crypto_backends.py), so a master and a minion never need the same choice.
All functions take and return bytes; nothing here touches a socket.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from rx.transport.keyprint import fingerprint, plain_fingerprint
from rx.transport.sizes import KEY_BYTES, NONCE_BYTES, PUBLIC_KEY_BYTES, SIGNATURE_BYTES

try:
    from nacl import bindings as _sodium
    from nacl.exceptions import CryptoError as _SodiumError
except ImportError:  # cryptography serves everything
    _sodium = None
    _SodiumError = ValueError

__all__ = ["Aead", "CryptoError", "Ephemeral", "Identity", "Verifier", "ensure_private_dir", "fingerprint", "hkdf",
           "load_or_create_identity", "plain_fingerprint", "use_sodium_aead", "verify", "write_secret"]

TAG_BYTES = 16


class CryptoError(Exception):
    """A signature, tag or key that does not check out."""


@functools.cache
def _openssl() -> Any:
    """cryptography's primitives, imported on first use (a minion with PyNaCl never imports them)."""
    from cryptography.exceptions import InvalidSignature, InvalidTag
    from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    return SimpleNamespace(ed25519=ed25519, x25519=x25519, AESGCM=AESGCM,
                           invalid=(InvalidSignature, InvalidTag, ValueError))


class Identity:
    """A long-term Ed25519 signing key pair (one per master and per minion), from its 32-byte seed."""

    def __init__(self, seed: bytes) -> None:
        if not isinstance(seed, bytes) or len(seed) != KEY_BYTES:
            got = len(seed) if isinstance(seed, (bytes, bytearray)) else type(seed).__name__
            raise CryptoError(f"private key must be {KEY_BYTES} bytes, got {got}")
        self._seed = seed
        self._key: Any = None
        if _sodium is not None:
            self.public, self._secret = _sodium.crypto_sign_seed_keypair(seed)
        else:
            self._key = _openssl().ed25519.Ed25519PrivateKey.from_private_bytes(seed)
            self.public = self._key.public_key().public_bytes_raw()

    @classmethod
    def generate(cls) -> "Identity":
        return cls(os.urandom(KEY_BYTES))

    @classmethod
    def from_bytes(cls, raw: bytes) -> "Identity":
        return cls(raw)

    def private_bytes(self) -> bytes:
        return self._seed

    def sign(self, data: bytes) -> bytes:
        if self._key is None:
            return _sodium.crypto_sign(data, self._secret)[:SIGNATURE_BYTES]
        return self._key.sign(data)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public)


def verify(public_key: bytes, signature: bytes, data: bytes) -> None:
    """Raise CryptoError unless `signature` is `public_key`'s signature of `data`."""
    if len(public_key) != PUBLIC_KEY_BYTES or len(signature) != SIGNATURE_BYTES:
        raise CryptoError("bad key or signature length")
    Verifier(public_key).verify(signature, data)


class Verifier:
    """A public key, for verifying many messages from the same signer."""

    def __init__(self, public_key: bytes) -> None:
        if len(public_key) != PUBLIC_KEY_BYTES:
            raise CryptoError("bad public key length")
        self._raw = public_key
        self._key = None if _sodium is not None else _openssl().ed25519.Ed25519PublicKey.from_public_bytes(public_key)

    def verify(self, signature: bytes, data: bytes) -> None:
        if len(signature) != SIGNATURE_BYTES:
            raise CryptoError("bad signature length")
        if self._key is None:
            try:
                _sodium.crypto_sign_open(signature + data, self._raw)
            except (_SodiumError, ValueError):
                raise CryptoError("signature does not verify") from None
        else:
            try:
                self._key.verify(signature, data)
            except _openssl().invalid:
                raise CryptoError("signature does not verify") from None


def hkdf(secret: bytes, info: bytes, salt: bytes | None = None, length: int = KEY_BYTES) -> bytes:
    """HKDF-SHA256 (RFC 5869): extract with `salt` (none: 32 zero bytes), expand with `info` to `length` bytes."""
    if not 0 < length <= 255 * 32:
        raise CryptoError(f"HKDF cannot give {length} bytes")
    prk = hmac.digest(salt or bytes(32), secret, hashlib.sha256)
    out, block = b"", b""
    for i in range(1, -(-length // 32) + 1):
        block = hmac.digest(prk, block + info + bytes([i]), hashlib.sha256)
        out += block
    return out[:length]


class Ephemeral:
    """An X25519 key pair used once, so session keys have forward secrecy."""

    def __init__(self) -> None:
        if _sodium is not None:
            self._private: Any = os.urandom(KEY_BYTES)
            self.public = _sodium.crypto_scalarmult_base(self._private)
        else:
            self._private = _openssl().x25519.X25519PrivateKey.generate()
            self.public = self._private.public_key().public_bytes_raw()

    def shared_key(self, peer_public: bytes, info: bytes) -> bytes:
        if len(peer_public) != PUBLIC_KEY_BYTES:
            raise CryptoError("bad ephemeral key length")
        try:
            if isinstance(self._private, bytes):
                secret = _sodium.crypto_scalarmult(self._private, peer_public)
            else:
                secret = self._private.exchange(_openssl().x25519.X25519PublicKey.from_public_bytes(peer_public))
        except (_SodiumError, ValueError):
            raise CryptoError("ephemeral key exchange failed") from None
        if not any(secret):  # a low-order peer key: no shared secret at all
            raise CryptoError("ephemeral key exchange failed")
        return hkdf(secret, info)


class _OpenSSLAead:
    def __init__(self, key: bytes) -> None:
        self._aes = _openssl().AESGCM(key)

    def encrypt(self, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        return self._aes.encrypt(nonce, plaintext, aad)

    def decrypt(self, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
        try:
            return self._aes.decrypt(nonce, ciphertext, aad)
        except _openssl().invalid:
            raise CryptoError("ciphertext does not authenticate") from None


class _SodiumAead:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def encrypt(self, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        return _sodium.crypto_aead_aes256gcm_encrypt(plaintext, aad, nonce, self._key)

    def decrypt(self, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
        if len(ciphertext) < TAG_BYTES:
            raise CryptoError("ciphertext does not authenticate")
        try:
            return _sodium.crypto_aead_aes256gcm_decrypt(ciphertext, aad, nonce, self._key)
        except (_SodiumError, ValueError, TypeError):
            raise CryptoError("ciphertext does not authenticate") from None


_AEAD: type = _OpenSSLAead


def use_sodium_aead() -> bool:
    """From now on in this process, AES-256-GCM from libsodium, so cryptography is never imported: what rx-minion
    does at start.  False (nothing changes) without PyNaCl or where libsodium's AES-GCM cannot run (a CPU without
    AES-NI): it is checked against a known answer first."""
    global _AEAD
    if _sodium is None or not hasattr(_sodium, "crypto_aead_aes256gcm_encrypt"):  # PyNaCl < 1.6 has no AES-GCM
        return False
    key, nonce = bytes(range(32)), bytes(NONCE_BYTES)
    try:
        sealed = _SodiumAead(key).encrypt(nonce, b"rx", b"")
    except _SodiumError:
        return False
    if sealed.hex() != AES_GCM_KNOWN_ANSWER:
        return False
    _AEAD = _SodiumAead
    return True


AES_GCM_KNOWN_ANSWER = "7cc48820bac2c87c43fdf140472e1338f2ab"
"""AES-256-GCM of b"rx", key bytes 0..31, an all-zero nonce, no AAD (ciphertext and tag), as OpenSSL computes it."""


class Aead:
    """AES-256-GCM with a random 96-bit nonce per message."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise CryptoError(f"AEAD key must be {KEY_BYTES} bytes")
        self._aes = _AEAD(key)

    def seal(self, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
        nonce = os.urandom(NONCE_BYTES)
        return nonce, self._aes.encrypt(nonce, plaintext, aad)

    def open(self, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
        if not isinstance(nonce, bytes) or len(nonce) != NONCE_BYTES:
            raise CryptoError("bad nonce")
        return self._aes.decrypt(nonce, ciphertext, aad)


def write_secret(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write a secret file atomically, created with `mode` (never briefly world-readable)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def load_or_create_identity(directory: Path, name: str) -> Identity:
    """Load `<dir>/<name>.key` (raw Ed25519), creating the pair (0600 key, 0700 dir) if absent."""
    ensure_private_dir(directory)
    key_path = directory / f"{name}.key"
    pub_path = directory / f"{name}.pub"
    try:
        raw = key_path.read_bytes()
    except FileNotFoundError:
        ident = Identity.generate()
        write_secret(key_path, ident.private_bytes())
        pub_path.write_bytes(ident.public)
        return ident
    ident = Identity.from_bytes(raw)
    if not pub_path.exists():
        pub_path.write_bytes(ident.public)
    return ident


def ensure_private_dir(directory: Path) -> None:
    """Create `directory` (and parents) and make it 0700."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
