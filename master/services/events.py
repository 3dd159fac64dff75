"""The master's event bus as a service: fire typed events when the master runs, subscribe to
them (for clients that need the live master)."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Sequence

from rx.transport.roles import EventSource, RequestTimeout, Transport, ipc_url, open_transport

if TYPE_CHECKING:
    from rx.transport.events import Event

log = logging.getLogger(__name__)


class MasterNotRunning(Exception):
    """What needs the live master cannot be done: the message says how to start it."""


class EventService:
    def __init__(self, pull_path: str, pub_path: str) -> None:
        self.pull_path = pull_path
        self.pub_path = pub_path
        self._transport: Transport | None = None

    def running(self) -> bool:
        """Whether the master's bus is up (its socket exists in the sock_dir)."""
        return os.path.exists(self.pull_path)

    @property
    def transport(self) -> Transport:
        """This process's transport (opened on first use, closed by `close`); other clients of the live
        master in the same process share it."""
        if self._transport is None:
            self._transport = open_transport()
        return self._transport

    async def fire(self, events: Sequence["Event"]) -> bool:
        """Fire `events` if the master runs (False if it does not: nothing to tell)."""
        if not events or not self.running():
            return False
        sink = self.transport.event_sink(ipc_url(self.pull_path))
        try:
            for ev in events:
                await sink.fire(ev.tag, ev.to_wire())
        finally:
            sink.close()
        return True

    async def subscribe(self, prefixes: Sequence[str], timeout: float = 5.0) -> EventSource:
        """Events whose tag starts with one of `prefixes`, from now on (the subscription is proven live)."""
        if not self.running():
            raise MasterNotRunning(f"the master is not running (no event bus at {self.pull_path}); "
                                   "start it with: rx-master -d")
        try:
            return await self.transport.event_source(ipc_url(self.pub_path), ipc_url(self.pull_path), prefixes,
                                                timeout=timeout)
        except RequestTimeout as exc:
            raise MasterNotRunning(f"the master's event bus does not answer: {exc}") from None

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
