"""What the stores raise (apart from the stores themselves, so a client that only reports these
errors does not load the store machinery)."""

from __future__ import annotations

__all__ = ["StoreError", "JobExists", "UnknownJob", "KeyStoreError"]


class StoreError(Exception):
    """A store cannot do what was asked (unreadable, corrupt, unavailable); the message says which."""


class JobExists(StoreError):
    pass


class UnknownJob(StoreError):
    pass


class KeyStoreError(StoreError):
    """A key operation that cannot be done (bad id, unreadable key)."""
