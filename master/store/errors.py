"""What the stores raise (apart from the stores themselves, so a client that only reports these
errors does not load the store machinery)."""

from __future__ import annotations

from typing import Any

__all__ = ["StoreError", "JobExists", "UnknownJob", "NotExpected", "KeyStoreError", "StoreUnavailable", "ReturnsLost"]


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


class StoreUnavailable(StoreError):
    """The store cannot be used right now (disk full, read-only or immutable files, a database being
    re-created): the caller answers "retry later", never "failed for good"."""


class ReturnsLost(StoreError):
    """The returns of a job that are kept may be incomplete: the returns database was deleted or replaced
    after the job was published (`lost_before` is the first jid whose returns are whole); `partial` is what is
    stored of it now."""

    def __init__(self, jid: str, lost_before: str, partial: dict) -> None:
        super().__init__(f"returns of job {jid} may be lost: the job cache's returns database was deleted or "
                         f"replaced after it was published (jobs before {lost_before}); {len(partial)} return(s) kept")
        self.jid = jid
        self.lost_before = lost_before
        self.partial = partial
