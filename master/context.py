"""What an MWorker's handlers may use; nothing else reaches them."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Mapping

from rx.master.store import Stores
from rx.transport.crypto import Identity
from rx.transport.errors import ErrorKind
from rx.transport.events import Event
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


@dataclass
class WorkerContext:
    identity: Identity
    stores: Stores
    root_key: str
    settings: WorkerSettings
    events: EventSink
    publisher: FrameSink

    async def fire(self, event: Event) -> None:
        await self.events.fire(event.tag, event.to_wire())


class DropLog:
    """Logs at most one line per `interval` seconds plus a count of the rest, so a flood cannot fill the
    log; with `traceback`, the line carries the exception being handled."""

    def __init__(self, what: str = "dropped request", level: int = logging.WARNING, interval: float = 1.0,
                 traceback: bool = False) -> None:
        self.what, self.level, self.interval, self.traceback = what, level, interval, traceback
        self._last = -interval
        self._suppressed = 0

    def __call__(self, why: str) -> None:
        now = time.monotonic()
        if now - self._last >= self.interval:
            extra = f" ({self._suppressed} more since the last report)" if self._suppressed else ""
            log.log(self.level, "%s: %s%s", self.what, why, extra, exc_info=self.traceback)
            self._last, self._suppressed = now, 0
        else:
            self._suppressed += 1


drop_log = DropLog()


def error(kind: ErrorKind, message: str) -> dict:
    return ErrorReply(kind, message).to_wire()
