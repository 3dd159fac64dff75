"""The minion's pillar: fetched from the master after the minion authenticates, again on
`saltutil.refresh_pillar` and every `pillar_refresh_interval` seconds.  It is held in the memory of the
minion process only (never written to disk: it may hold secrets) and reaches each job through its
ExecContext (`ctx.pillar`).

A fetch that fails (the master cannot compile the pillar, or cannot be reached) keeps the last good
pillar: the one held, or the one the master says it last sent (a minion restarted while its pillar does
not compile gets that one back); the reason is kept too (`error`), so that a job that finds no pillar at
all can say why, and `saltutil.refresh_pillar` fails with it.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Callable

from rx.minion.link import SEND_ATTEMPTS, MasterLink, Status
from rx.transport.errors import ProtocolError
from rx.transport.pillarmsgs import PILLAR, PillarReply, PillarRequest

log = logging.getLogger("rx.minion")

NOT_FETCHED = "the pillar was not fetched from the master yet"
JITTER = 0.1
"""Scheduled refreshes are spread by up to this fraction of the interval, so a fleet does not ask at once."""


class MinionPillar:
    """The pillar this minion holds (`data`, None until a fetch succeeds) and why the last fetch failed."""

    def __init__(self, pillarenv: str = "", on_refresh: Callable[[], None] = lambda: None) -> None:
        """`on_refresh` is called after each fetch, whatever became of it."""
        self.pillarenv = pillarenv
        self.on_refresh = on_refresh
        self.data: dict | None = None
        self.error = NOT_FETCHED
        self._lock = asyncio.Lock()

    async def refresh(self, link: MasterLink, grains: dict, attempts: int = SEND_ATTEMPTS) -> str:
        """Fetch the pillar now (one fetch at a time): "" when it was refreshed, else why not (the last good
        pillar is kept).  `attempts`: how many times the request may be sent."""
        async with self._lock:
            outcome = await link.exchange(PILLAR, PillarRequest(dict(grains), self.pillarenv).to_wire(), attempts)
            why = ""
            if outcome.status is Status.DELIVERED:
                try:
                    reply = PillarReply.from_wire(outcome.reply)
                    self.data, self.error = reply.pillar, ""
                    why = reply.error  # not compiled now: the master sent the last pillar this minion had
                except ProtocolError as exc:
                    why = f"the master's reply is not a pillar: {exc}"
            else:
                why = outcome.reason or f"the request was {outcome.status.value}"
            if why:
                self.error = why
                log.warning("pillar not refreshed (%s): %s", "the last one is kept" if self.data is not None else
                            "this minion has none", why)
            self.on_refresh()
            return why

    async def every(self, interval: float, link: MasterLink, grains: Callable[[], dict]) -> None:
        """Refresh every `interval` seconds (spread by JITTER) until cancelled."""
        while True:
            await asyncio.sleep(interval * random.uniform(1 - JITTER, 1 + JITTER))
            await self.refresh(link, grains())
