"""Returns on their way to the master: each is sent at once; one the master cannot take now (no
answer, or UNAVAILABLE / INTERNAL: a store or disk fault there) goes to the spool, and the spool
is sent, oldest first, until the master takes everything in it.

Rounds back off from 1 s to `return_retry_timer_max`; a wait is cut short as soon as the master is
seen answering again (a request it takes, a new session).  What a previous run left in the spool
is sent right after the first authentication.  A return the master refuses for good (a job it
does not know, a minion the job did not target) is logged and dropped, as one sent at once would be.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging

from rx.logsetup import RateLimitedLog
from rx.minion.link import MasterLink, Status
from rx.minion.spool import Spool
from rx.transport import messages as m

log = logging.getLogger("rx.minion")

STOP_DELIVERY_SECONDS = 3.0
"""On stop, how long the returns of the jobs that ended get to reach the master before they are spooled."""
SPOOL_WARN_SECONDS = 60.0
"""At most one warning per this many seconds about returns waiting in the spool."""


class Outbox:
    def __init__(self, link: MasterLink, spool: Spool) -> None:
        self.link = link
        self.spool = spool
        self._filled = asyncio.Event()
        self._kept = functools.partial(RateLimitedLog(log, SPOOL_WARN_SECONDS), logging.WARNING)
        self._waiting = functools.partial(RateLimitedLog(log, SPOOL_WARN_SECONDS), logging.WARNING)

    async def deliver(self, ret: dict) -> None:
        """Send one return (a `JobReturn` in wire form) now; spool it if the master cannot take it, or if
        the minion stops while it is on its way."""
        try:
            outcome = await self.link.exchange(m.RETURN, ret, attempts=1)
        except asyncio.CancelledError:
            self.keep(ret, "the minion is stopping")
            raise
        if outcome.status is Status.UNDELIVERED:
            self.keep(ret, outcome.reason)

    def keep(self, ret: dict, why: str) -> None:
        """Spool a return that could not be delivered, and wake the sender."""
        if self.spool.put(ret) is not None:
            self._kept("the master did not take the return of job %s (%s): it waits in the return spool "
                       "(%d returns) and is sent again until the master takes it", ret.get("jid"), why, len(self.spool))
        self._filled.set()

    async def run(self) -> None:
        """Send the spool whenever it holds returns; lasts until cancelled."""
        delay, failed = 0.0, 0
        while True:
            if not len(self.spool):
                self._filled.clear()
                await self._filled.wait()
                delay, failed = 1.0, 0
                continue
            if delay and not self.link.answered.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self.link.answered.wait()
            why = await self._send_spooled()
            if why is None:
                delay, failed = 0.0, 0
                continue
            failed += 1
            delay = min(max(delay * 2, 1.0), self.link.cfg.return_retry_timer_max)
            log.info("return spool: round %d failed, %d returns wait (%s); next round in %gs", failed,
                     len(self.spool), why, delay)
            self._waiting("%d returns wait in the return spool: the master does not take them (%s); trying "
                          "again every %gs at most", len(self.spool), why, delay)

    async def _send_spooled(self) -> str | None:
        """Send the spooled returns, oldest first; None when all went, else why the round stopped."""
        self.link.answered.clear()
        sent = 0
        for entry in self.spool.entries():
            if entry not in self.spool:
                continue  # dropped past the bound while an earlier one was on its way
            ret = self.spool.read(entry)
            if ret is None:
                continue
            outcome = await self.link.exchange(m.RETURN, ret, attempts=1)
            if outcome.status is Status.UNDELIVERED:
                if sent:
                    log.warning("return spool: delivered %d spooled returns, %d still wait", sent, len(self.spool))
                return outcome.reason
            self.spool.remove(entry)
            sent += 1
        if sent:
            log.warning("return spool: delivered %d spooled returns (%d left)", sent, len(self.spool))
        return None
