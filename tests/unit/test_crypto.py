"""rx.transport.crypto: real Ed25519 / X25519 / AES-256-GCM keys, real files in tmp_path; every test on each
backend (tests/support/cryptobackends.py)."""

from __future__ import annotations

import hashlib
import os
import stat

import pytest

from rx.transport import crypto
from rx.transport.crypto import (Aead, CryptoError, Ephemeral, Identity, Verifier, ensure_private_dir, fingerprint,
                                 hkdf, load_or_create_identity, plain_fingerprint, verify, write_secret)
from tests.support.cryptobackends import backend  # noqa: F401  (a fixture)


@pytest.fixture(autouse=True)
def _every_backend(backend):  # noqa: F811
    """Each test runs once per backend."""


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _flip(data: bytes, index: int = 0) -> bytes:
    b = bytearray(data)
    b[index] ^= 0x01
    return bytes(b)


# ---------------------------------------------------------------- fingerprints

def test_fingerprint_is_sha256_of_the_public_key_in_colon_pairs():
    ident = Identity.generate()
    fp = fingerprint(ident.public)
    digest = hashlib.sha256(ident.public).hexdigest()
    assert fp.replace(":", "") == digest
    assert len(fp.split(":")) == 32 and all(len(p) == 2 for p in fp.split(":"))
    assert ident.fingerprint == fp


def test_fingerprints_differ_per_key():
    assert fingerprint(Identity.generate().public) != fingerprint(Identity.generate().public)


@pytest.mark.parametrize("given, plain", [("AB:cd:Ef", "abcdef"), ("abcdef", "abcdef"), ("", "")])
def test_plain_fingerprint(given, plain):
    assert plain_fingerprint(given) == plain


# ---------------------------------------------------------------- identities and signatures

def test_sign_and_verify():
    ident = Identity.generate()
    sig = ident.sign(b"message")
    assert len(sig) == crypto.SIGNATURE_BYTES and len(ident.public) == crypto.PUBLIC_KEY_BYTES
    verify(ident.public, sig, b"message")
    Verifier(ident.public).verify(sig, b"message")


def test_identity_round_trips_through_private_bytes():
    ident = Identity.generate()
    again = Identity.from_bytes(ident.private_bytes())
    assert again.public == ident.public
    verify(ident.public, again.sign(b"x"), b"x")


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_identity_from_bytes_refuses_wrong_length(length):
    with pytest.raises(CryptoError):
        Identity.from_bytes(b"\x01" * length)


_SIGNER = Identity.generate()
_OTHER = Identity.generate()
_SIG = _SIGNER.sign(b"payload")

BAD_SIGNATURES = {
    "tampered-data": (_SIGNER.public, _SIG, b"payloaD"),
    "tampered-signature-first-byte": (_SIGNER.public, _flip(_SIG, 0), b"payload"),
    "tampered-signature-last-byte": (_SIGNER.public, _flip(_SIG, 63), b"payload"),
    "other-key": (_OTHER.public, _SIG, b"payload"),
    "other-signer": (_SIGNER.public, _OTHER.sign(b"payload"), b"payload"),
    "empty-data": (_SIGNER.public, _SIG, b""),
    "short-signature": (_SIGNER.public, _SIG[:63], b"payload"),
    "long-signature": (_SIGNER.public, _SIG + b"\0", b"payload"),
    "zero-signature": (_SIGNER.public, b"\0" * 64, b"payload"),
    "short-key": (_SIGNER.public[:31], _SIG, b"payload"),
    "zero-key": (b"\0" * 32, _SIG, b"payload"),
}


@pytest.mark.parametrize("public, sig, data", list(BAD_SIGNATURES.values()), ids=list(BAD_SIGNATURES))
def test_verify_refuses(public, sig, data):
    with pytest.raises(CryptoError):
        verify(public, sig, data)


@pytest.mark.parametrize("public, sig, data",
                         [v for k, v in BAD_SIGNATURES.items() if k != "short-key"],
                         ids=[k for k in BAD_SIGNATURES if k != "short-key"])
def test_verifier_refuses(public, sig, data):
    with pytest.raises(CryptoError):
        Verifier(public).verify(sig, data)


@pytest.mark.parametrize("length", [0, 31, 33])
def test_verifier_refuses_bad_key_length(length):
    with pytest.raises(CryptoError):
        Verifier(b"\x01" * length)


# ---------------------------------------------------------------- key derivation and exchange

def test_hkdf_is_deterministic_and_separated_by_info_and_salt():
    secret = os.urandom(32)
    assert hkdf(secret, b"a") == hkdf(secret, b"a")
    assert len(hkdf(secret, b"a")) == crypto.KEY_BYTES
    assert len(hkdf(secret, b"a", length=16)) == 16
    assert hkdf(secret, b"a") != hkdf(secret, b"b")
    assert hkdf(secret, b"a", salt=b"s1") != hkdf(secret, b"a", salt=b"s2")
    assert hkdf(secret, b"a") != hkdf(os.urandom(32), b"a")


def test_ephemeral_exchange_agrees_and_is_bound_to_info():
    a, b = Ephemeral(), Ephemeral()
    assert a.public != b.public
    assert a.shared_key(b.public, b"info") == b.shared_key(a.public, b"info")
    assert a.shared_key(b.public, b"info") != a.shared_key(b.public, b"other")
    assert a.shared_key(b.public, b"info") != a.shared_key(Ephemeral().public, b"info")


@pytest.mark.parametrize("peer", [b"", b"\x09" * 31, b"\x09" * 33, b"\0" * 32], ids=["empty", "31", "33", "zero-point"])
def test_ephemeral_refuses_bad_peer_keys(peer):
    with pytest.raises(CryptoError):
        Ephemeral().shared_key(peer, b"info")


# ---------------------------------------------------------------- AEAD

def test_aead_round_trip_with_fresh_nonces():
    box = Aead(os.urandom(32))
    n1, c1 = box.seal(b"secret", b"aad")
    n2, c2 = box.seal(b"secret", b"aad")
    assert len(n1) == crypto.NONCE_BYTES
    assert n1 != n2 and c1 != c2
    assert box.open(n1, c1, b"aad") == b"secret"
    assert box.open(n2, c2, b"aad") == b"secret"
    assert b"secret" not in c1


_KEY = os.urandom(32)
_NONCE, _CT = Aead(_KEY).seal(b"attack at dawn", b"rx/aad")

BAD_OPENS = {
    "tampered-ciphertext": (_KEY, _NONCE, _flip(_CT, 0), b"rx/aad"),
    "tampered-tag": (_KEY, _NONCE, _flip(_CT, len(_CT) - 1), b"rx/aad"),
    "truncated": (_KEY, _NONCE, _CT[:-1], b"rx/aad"),
    "empty-ciphertext": (_KEY, _NONCE, b"", b"rx/aad"),
    "tampered-nonce": (_KEY, _flip(_NONCE), _CT, b"rx/aad"),
    "other-aad": (_KEY, _NONCE, _CT, b"rx/aaD"),
    "missing-aad": (_KEY, _NONCE, _CT, b""),
    "other-key": (os.urandom(32), _NONCE, _CT, b"rx/aad"),
    "short-nonce": (_KEY, _NONCE[:11], _CT, b"rx/aad"),
    "long-nonce": (_KEY, _NONCE + b"\0", _CT, b"rx/aad"),
    "nonce-not-bytes": (_KEY, None, _CT, b"rx/aad"),
    "nonce-str": (_KEY, "x" * 12, _CT, b"rx/aad"),
}


@pytest.mark.parametrize("key, nonce, ct, aad", list(BAD_OPENS.values()), ids=list(BAD_OPENS))
def test_aead_refuses_anything_tampered(key, nonce, ct, aad):
    assert Aead(_KEY).open(_NONCE, _CT, b"rx/aad") == b"attack at dawn"  # the untampered one opens
    with pytest.raises(CryptoError):
        Aead(key).open(nonce, ct, aad)


@pytest.mark.parametrize("length", [0, 16, 24, 31, 33])
def test_aead_refuses_keys_that_are_not_256_bit(length):
    with pytest.raises(CryptoError):
        Aead(b"k" * length)


# ---------------------------------------------------------------- files

def test_write_secret_is_0600_even_with_a_permissive_umask(tmp_path):
    old = os.umask(0)
    try:
        write_secret(tmp_path / "s", b"one")
    finally:
        os.umask(old)
    assert (tmp_path / "s").read_bytes() == b"one"
    assert _mode(tmp_path / "s") == 0o600


def test_write_secret_replaces_and_leaves_no_temp_files(tmp_path):
    write_secret(tmp_path / "s", b"one")
    write_secret(tmp_path / "s", b"two", mode=0o400)
    assert (tmp_path / "s").read_bytes() == b"two"
    assert _mode(tmp_path / "s") == 0o400
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]


def test_load_or_create_identity_creates_private_key_and_dir(tmp_path):
    d = tmp_path / "pki" / "minion"
    ident = load_or_create_identity(d, "minion")
    assert _mode(d) == 0o700
    assert _mode(d / "minion.key") == 0o600
    assert (d / "minion.pub").read_bytes() == ident.public
    assert (d / "minion.key").read_bytes() == ident.private_bytes()


def test_load_or_create_identity_loads_the_same_key(tmp_path):
    first = load_or_create_identity(tmp_path, "master")
    (tmp_path / "master.pub").unlink()
    second = load_or_create_identity(tmp_path, "master")
    assert second.public == first.public
    assert (tmp_path / "master.pub").read_bytes() == first.public  # recreated from the private key


def test_load_or_create_identity_refuses_a_corrupt_key(tmp_path):
    load_or_create_identity(tmp_path, "master")
    (tmp_path / "master.key").write_bytes(b"short")
    with pytest.raises(CryptoError):
        load_or_create_identity(tmp_path, "master")


def test_ensure_private_dir_tightens_an_existing_dir(tmp_path):
    d = tmp_path / "open"
    d.mkdir(mode=0o755)
    os.chmod(d, 0o755)
    ensure_private_dir(d)
    assert _mode(d) == 0o700
