"""Running rx.transport.crypto on each of its backends in one process: libsodium for Ed25519/X25519 with
OpenSSL's AES-GCM (a master), libsodium for everything (rx-minion), OpenSSL for everything (no PyNaCl)."""

from __future__ import annotations

from typing import Iterator

import pytest

from rx.transport import crypto

BACKENDS = ("sodium", "sodium-aead", "openssl")


def use(monkeypatch: pytest.MonkeyPatch, backend: str) -> None:
    """Make `backend` serve rx.transport.crypto for the rest of the test."""
    monkeypatch.setattr(crypto, "_AEAD", crypto._OpenSSLAead)
    if backend == "openssl":
        monkeypatch.setattr(crypto, "_sodium", None)
    elif backend == "sodium-aead":
        assert crypto.use_sodium_aead(), "libsodium's AES-GCM does not run here"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    use(monkeypatch, request.param)
    yield request.param
