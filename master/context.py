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
    private_publish_max: int = 0


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
    """Logs dropped requests, at most one line per second plus a count of the rest."""

    def __init__(self) -> None:
        self._last = 0.0
        self._suppressed = 0

    def __call__(self, why: str) -> None:
        now = time.monotonic()
        if now - self._last >= 1.0:
            extra = f" ({self._suppressed} more dropped since last report)" if self._suppressed else ""
            log.warning("dropped request: %s%s", why, extra)
            self._last, self._suppressed = now, 0
        else:
            self._suppressed += 1


drop_log = DropLog()


def error(kind: ErrorKind, message: str) -> dict:
    return ErrorReply(kind, message).to_wire()
