"""The job records a worker read last, each with its minions as a set (for `_missed`, the catch-up).

After a master restart every connected minion asks for the jobs it missed while reconnecting: 10,000
minions, 10,000 `_missed` requests, each about the same few recent jobs.  Read from the store each time,
every request decoded whole records whose minion lists hold all 10,000 ids and scanned those lists, so
the storm cost grew with the square of the fleet and the minions' requests timed out and came again
(measured: 6,219 `_missed` timeouts, not all 10,000 minions answering 200 s after the restart).  A job
record does not change once published, so a worker may keep the last few; a job removed from the store
meanwhile is still answered from here until it falls out, which the caller's expiry check bounds.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Awaitable, Callable

from rx.master.store import JobRecord
from rx.transport.messages import Job

RECENT_JOBS = 16
"""Records kept per worker (a `_missed` looks back CATCH_UP_SECONDS: a few jobs at most, unless jobs are
published faster than that, when the oldest are read again)."""


class RecentJobs:
    """An LRU of (job, its minions as a frozenset) by jid."""

    def __init__(self, size: int = RECENT_JOBS) -> None:
        self.size = size
        self._records: OrderedDict[str, tuple[Job, frozenset[str]]] = OrderedDict()

    async def get(self, jid: str, load: Callable[[str], Awaitable[JobRecord]]) -> tuple[Job, frozenset[str]]:
        """The job `jid` and its minions, read with `load` unless kept; what `load` raises goes through."""
        found = self._records.get(jid)
        if found is not None:
            self._records.move_to_end(jid)
            return found
        record = await load(jid)
        found = (record.job, frozenset(record.minions))
        self._records[jid] = found
        while len(self._records) > self.size:
            self._records.popitem(last=False)
        return found
