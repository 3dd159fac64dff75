"""What the stores raise (apart from the stores themselves, so a client that only reports these
errors does not load the store machinery)."""

from __future__ import annotations

from typing import Any

__all__ = ["StoreError", "JobExists", "UnknownJob", "NotExpected", "KeyStoreError"]


class StoreError(Exception):
    """A store cannot do what was asked (unreadable, corrupt, unavailable); the message says which."""


class JobExists(StoreError):
    pass


class UnknownJob(StoreError):
    pass


class NotExpected(StoreError):
    """A return from a minion outside the job's expected set; `target` is the job's JobTarget, so the
    caller can ask whether the minion may match after all (accepted after the job was published)."""

    def __init__(self, jid: str, minion_id: str, target: Any) -> None:
        super().__init__(f"job {jid} did not target {minion_id}")
        self.target = target


class KeyStoreError(StoreError):
    """A key operation that cannot be done (bad id, unreadable key)."""
