"""rx.transport.crypto's backends agree byte for byte: what libsodium signs, derives or seals, OpenSSL (through
cryptography) verifies, derives the same or opens, and back; HKDF gives RFC 5869's answers.  A master and a
minion may use different backends, so this is the wire's compatibility, not a detail."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from rx.transport import crypto
from rx.transport.crypto import Aead, CryptoError, Ephemeral, Identity, Verifier, hkdf
from tests.support.cryptobackends import use

PAIRS = [("sodium", "openssl"), ("openssl", "sodium"), ("sodium-aead", "openssl"), ("openssl", "sodium-aead"),
         ("sodium-aead", "sodium")]


def _on(monkeypatch: pytest.MonkeyPatch, backend: str, make):
    """`make()` run with `backend` serving (the result keeps the backend it was made with)."""
    with monkeypatch.context() as m:
        use(m, backend)
        return make()


@pytest.mark.parametrize("ikm,salt,info,length,okm", [
    (bytes([0x0b] * 22), bytes(range(13)), bytes(range(0xf0, 0xfa)), 42,
     "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"),
    (bytes(range(0x50)), bytes(range(0x60, 0xb0)), bytes(range(0xb0, 0x100)), 82,
     "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f09b8"
     "367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87"),
    (bytes([0x0b] * 22), b"", b"", 42,
     "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"),
], ids=["rfc5869-case-1", "rfc5869-case-2", "rfc5869-case-3"])
def test_hkdf_gives_rfc5869s_answers(ikm, salt, info, length, okm):
    assert hkdf(ikm, info, salt or None, length).hex() == okm


@pytest.mark.parametrize("length", [1, 16, 32, 33, 64, 100, 255 * 32])
def test_hkdf_matches_cryptographys(length):
    secret, info, salt = os.urandom(32), os.urandom(20), os.urandom(32)
    for s in (salt, None):
        assert hkdf(secret, info, s, length) == HKDF(algorithm=SHA256(), length=length, salt=s, info=info).derive(secret)


@pytest.mark.parametrize("length", [0, 255 * 32 + 1])
def test_hkdf_refuses_lengths_it_cannot_give(length):
    with pytest.raises(CryptoError):
        hkdf(b"secret", b"info", None, length)


@pytest.mark.parametrize("a,b", PAIRS)
def test_ed25519_one_seed_one_key_pair_and_the_same_signatures(monkeypatch, a, b):
    seed, data = os.urandom(32), os.urandom(300)
    ia, ib = _on(monkeypatch, a, lambda: Identity(seed)), _on(monkeypatch, b, lambda: Identity(seed))
    assert ia.public == ib.public and ia.sign(data) == ib.sign(data)  # Ed25519 signatures are deterministic
    verifier = _on(monkeypatch, b, lambda: Verifier(ia.public))
    verifier.verify(ia.sign(data), data)
    with pytest.raises(CryptoError):
        verifier.verify(ia.sign(data), data + b"!")
    with pytest.raises(CryptoError):
        verifier.verify(Identity.generate().sign(data), data)


@pytest.mark.parametrize("a,b", PAIRS)
def test_x25519_both_ends_derive_the_same_key(monkeypatch, a, b):
    ea, eb = _on(monkeypatch, a, Ephemeral), _on(monkeypatch, b, Ephemeral)
    key_a = _on(monkeypatch, a, lambda: ea.shared_key(eb.public, b"rx session"))
    key_b = _on(monkeypatch, b, lambda: eb.shared_key(ea.public, b"rx session"))
    assert key_a == key_b and len(key_a) == 32


@pytest.mark.parametrize("backend", ["sodium", "openssl"])
@pytest.mark.parametrize("peer", [bytes(32), (1).to_bytes(32, "little")], ids=["zero", "order-one"])
def test_x25519_refuses_a_low_order_peer_on_every_backend(monkeypatch, backend, peer):
    ours = _on(monkeypatch, backend, Ephemeral)
    with pytest.raises(CryptoError):
        _on(monkeypatch, backend, lambda: ours.shared_key(peer, b"rx session"))


@pytest.mark.parametrize("a,b", PAIRS)
@pytest.mark.parametrize("size", [0, 1, 300, 70_000])
def test_aes_gcm_sealed_by_one_opens_with_the_other(monkeypatch, a, b, size):
    key, plain, aad = os.urandom(32), os.urandom(size), os.urandom(12)
    sealer, opener = _on(monkeypatch, a, lambda: Aead(key)), _on(monkeypatch, b, lambda: Aead(key))
    nonce, ct = sealer.seal(plain, aad)
    assert opener.open(nonce, ct, aad) == plain
    assert ct == AESGCM(key).encrypt(nonce, plain, aad)
    for bad_ct, bad_aad in ((ct[:-1] + bytes([ct[-1] ^ 1]), aad), (ct, aad + b"x"), (ct[:15], aad), (b"", aad)):
        with pytest.raises(CryptoError):
            opener.open(nonce, bad_ct, bad_aad)


def test_the_known_answer_libsodium_is_checked_against_is_openssls():
    assert AESGCM(bytes(range(32))).encrypt(bytes(12), b"rx", b"").hex() == crypto.AES_GCM_KNOWN_ANSWER


def test_use_sodium_aead_switches_only_when_libsodium_can(monkeypatch):
    monkeypatch.setattr(crypto, "_AEAD", crypto._OpenSSLAead)
    assert crypto.use_sodium_aead() and crypto._AEAD is crypto._SodiumAead
    monkeypatch.setattr(crypto, "_AEAD", crypto._OpenSSLAead)
    monkeypatch.setattr(crypto, "_sodium", None)
    assert not crypto.use_sodium_aead() and crypto._AEAD is crypto._OpenSSLAead
