"""Watch the master's event bus from synchronous code (scripts, tests, the benchmarks).

The subscription is proven live before the constructor returns (a round trip of an
`rx/sync/<token>` event), so nothing fired afterwards is missed.  Runs on the master host as the
master's user: the bus is IPC in the 0700 sock_dir.
"""

from __future__ import annotations

import asyncio
import time
from typing import Callable

from rx.config import MasterConfig
from rx.master.services.events import EventService, MasterNotRunning


class EventWatch:
    """Events whose tag starts with `prefix`, as (tag, data) pairs."""

    def __init__(self, cfg: MasterConfig, prefix: str = "", *, sync_timeout: float = 20.0) -> None:
        self._loop = asyncio.new_event_loop()
        self._events = EventService(cfg.event_pull_ipc, cfg.event_pub_ipc)
        self._queue: list[tuple[str, dict]] = []
        try:
            self._source = self._loop.run_until_complete(self._events.subscribe((prefix,), timeout=sync_timeout))
        except MasterNotRunning as exc:
            self._events.close()
            self._loop.close()
            raise TimeoutError(str(exc)) from None

    def __enter__(self) -> "EventWatch":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def next(self, timeout: float, match: Callable[[str], bool] = lambda tag: True) -> tuple[str, dict] | None:
        """The next event whose tag `match`es within `timeout` seconds, or None."""
        return self._next(timeout, match)

    def _next(self, timeout: float, match: Callable[[str], bool] = lambda tag: True) -> tuple[str, dict] | None:
        deadline = time.monotonic() + timeout
        while True:
            while self._queue:
                tag, data = self._queue.pop(0)
                if match(tag):
                    return tag, data
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self._queue.extend(self._loop.run_until_complete(self._source.batch(left)))

    def drain(self, timeout: float) -> list[tuple[str, dict]]:
        """Everything that arrives within `timeout` seconds (to check that something did NOT happen)."""
        out = []
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            event = self._next(left)
            if event is not None:
                out.append(event)
        return out

    def close(self) -> None:
        if not self._loop.is_closed():
            self._source.close()
            self._events.close()
            self._loop.close()
