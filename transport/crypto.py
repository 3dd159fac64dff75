"""Keys and primitives: Ed25519 identities, X25519 + HKDF key delivery, AES-256-GCM.

All functions take and return bytes; nothing here touches a socket.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from rx.transport.keyprint import fingerprint, plain_fingerprint
from rx.transport.sizes import KEY_BYTES, NONCE_BYTES, PUBLIC_KEY_BYTES, SIGNATURE_BYTES

__all__ = ["Aead", "CryptoError", "Ephemeral", "Identity", "Verifier", "ensure_private_dir", "fingerprint", "hkdf",
           "load_or_create_identity", "plain_fingerprint", "verify", "write_secret"]

_RAW = serialization.Encoding.Raw
_RAW_PUB = serialization.PublicFormat.Raw
_RAW_PRIV = serialization.PrivateFormat.Raw
_NO_ENC = serialization.NoEncryption()


class CryptoError(Exception):
    """A signature, tag or key that does not check out."""


class Identity:
    """A long-term Ed25519 signing key pair (one per master and per minion)."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public = private.public_key().public_bytes(_RAW, _RAW_PUB)

    @classmethod
    def generate(cls) -> "Identity":
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_bytes(cls, raw: bytes) -> "Identity":
        if len(raw) != KEY_BYTES:
            raise CryptoError(f"private key must be {KEY_BYTES} bytes, got {len(raw)}")
        return cls(Ed25519PrivateKey.from_private_bytes(raw))

    def private_bytes(self) -> bytes:
        return self._private.private_bytes(_RAW, _RAW_PRIV, _NO_ENC)

    def sign(self, data: bytes) -> bytes:
        return self._private.sign(data)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public)


def verify(public_key: bytes, signature: bytes, data: bytes) -> None:
    """Raise CryptoError unless `signature` is `public_key`'s signature of `data`."""
    if len(public_key) != PUBLIC_KEY_BYTES or len(signature) != SIGNATURE_BYTES:
        raise CryptoError("bad key or signature length")
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, data)
    except (InvalidSignature, ValueError):
        raise CryptoError("signature does not verify") from None


class Verifier:
    """A parsed public key, for verifying many messages from the same signer cheaply."""

    def __init__(self, public_key: bytes) -> None:
        if len(public_key) != PUBLIC_KEY_BYTES:
            raise CryptoError("bad public key length")
        self._key = Ed25519PublicKey.from_public_bytes(public_key)

    def verify(self, signature: bytes, data: bytes) -> None:
        try:
            self._key.verify(signature, data)
        except (InvalidSignature, ValueError):
            raise CryptoError("signature does not verify") from None


def hkdf(secret: bytes, info: bytes, salt: bytes | None = None, length: int = KEY_BYTES) -> bytes:
    return HKDF(algorithm=SHA256(), length=length, salt=salt, info=info).derive(secret)


class Ephemeral:
    """An X25519 key pair used once, so session keys have forward secrecy."""

    def __init__(self) -> None:
        self._private = X25519PrivateKey.generate()
        self.public = self._private.public_key().public_bytes(_RAW, _RAW_PUB)

    def shared_key(self, peer_public: bytes, info: bytes) -> bytes:
        if len(peer_public) != PUBLIC_KEY_BYTES:
            raise CryptoError("bad ephemeral key length")
        try:
            secret = self._private.exchange(X25519PublicKey.from_public_bytes(peer_public))
        except ValueError:
            raise CryptoError("ephemeral key exchange failed") from None
        return hkdf(secret, info)


class Aead:
    """AES-256-GCM with a random 96-bit nonce per message."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise CryptoError(f"AEAD key must be {KEY_BYTES} bytes")
        self._aes = AESGCM(key)

    def seal(self, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
        nonce = os.urandom(NONCE_BYTES)
        return nonce, self._aes.encrypt(nonce, plaintext, aad)

    def open(self, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
        if not isinstance(nonce, bytes) or len(nonce) != NONCE_BYTES:
            raise CryptoError("bad nonce")
        try:
            return self._aes.decrypt(nonce, ciphertext, aad)
        except (InvalidTag, ValueError):
            raise CryptoError("ciphertext does not authenticate") from None


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
