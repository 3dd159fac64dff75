"""Key fingerprints (hashlib only: listing keys does not load the crypto library)."""

from __future__ import annotations

import hashlib

__all__ = ["fingerprint", "plain_fingerprint"]


def fingerprint(public_key: bytes) -> str:
    """SHA-256 of the raw public key, as colon-separated hex pairs (what rx-key prints)."""
    digest = hashlib.sha256(public_key).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def plain_fingerprint(fp: str) -> str:
    """A fingerprint without colons, lower case, for comparison."""
    return fp.replace(":", "").lower()
