"""What an MWorker's handlers may use; nothing else reaches them."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

from rx.master.autosign import AutoSign
from rx.master.store import Stores
from rx.transport.crypto import Identity
from rx.transport.errors import ErrorKind
from rx.transport.events import Event
from rx.transport.jidclock import JidClock
from rx.transport.replies import ErrorReply
from rx.transport.roles import EventSink, FrameSink

log = logging.getLogger("rx.master.handlers")


@dataclass(frozen=True)
class WorkerSettings:
    """The part of the master config a worker uses."""

    auto_accept: bool
    auth_window_seconds: float
    max_pending_keys: int
    publish_port: int
    nodegroups: Mapping[str, Any]
    private_publish_max: int = 0


@dataclass
class WorkerContext:
    identity: Identity
    stores: Stores
    root_key: str
    settings: WorkerSettings
    events: EventSink
    publisher: FrameSink
    jids: JidClock = field(default_factory=lambda: JidClock(None))
    """Allocates the jids of publish requests that bring none (rx.transport.jidclock)."""
    autosign: AutoSign = field(default_factory=lambda: AutoSign(""))
    """Ids pre-authorised by the operator (`autosign_file`); none by default."""
    heard: dict[str, float] = field(default_factory=dict)
    """When (time.monotonic) this worker last opened a sealed request from each minion: a client's `lookup`
    tells it which silent minions are alive (busy), not gone."""

    async def fire(self, event: Event) -> None:
        await self.events.fire(event.tag, event.to_wire())


class DropLog:
    """Logs what it is told (`what: why`), at most one line per `interval` seconds plus a count of the rest,
    so a flood cannot fill the log; with `traceback`, the line carries the exception being handled."""

    def __init__(self, what: str = "dropped request", past: str = "dropped", *, interval: float = 1.0,
                 level: int = logging.WARNING, traceback: bool = False) -> None:
        self.what, self.past, self.interval, self.level, self.traceback = what, past, interval, level, traceback
        self._last = float("-inf")
        self._suppressed = 0

    def __call__(self, why: str) -> None:
        now = time.monotonic()
        if now - self._last >= self.interval:
            extra = f" ({self._suppressed} more {self.past} since the last report)" if self._suppressed else ""
            log.log(self.level, "%s: %s%s", self.what, why, extra, exc_info=self.traceback)
            self._last, self._suppressed = now, 0
        else:
            self._suppressed += 1


drop_log = DropLog()
evict_log = DropLog("evicted a pending key", "evicted")
store_log = DropLog("the job store failed; answering \"retry later\"", "failed", interval=10.0, level=logging.ERROR)
"""Store and disk faults: one line per 10 s per process, with the count of the others."""


def error(kind: ErrorKind, message: str) -> dict:
    return ErrorReply(kind, message).to_wire()
