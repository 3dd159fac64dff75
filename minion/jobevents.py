"""Events a job fires (`event.send`), from the job's process to the minion's.

The job process cannot reach the master itself (the minion holds the session), so each job gets a
pipe: the job writes length-prefixed msgpack frames (`EventWriter`, its `ctx.fire_event`), the
minion reads them (`EventReader`) and fires each through its link as a sealed `_minion_event`, which
the master files under `rx/minion/<authenticated id>/<tag>`.  Limits on both sides: an event's
size, the events per job, and the tags: a job cannot fire the minion's own `start`/`grains`.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Callable

from rx.modules import CommandError
from rx.transport.codec import DecodeError, decode, encode
from rx.transport.errors import ProtocolError
from rx.transport.messages import MinionEvent
from rx.transport.tags import GRAINS_TAGS

log = logging.getLogger("rx.minion")

MAX_EVENT_BYTES = 1024 * 1024
"""Largest encoded event (tag and data) a job may fire."""
MAX_JOB_EVENTS = 1000
"""Most events one job may fire."""
RESERVED_TAGS = frozenset(GRAINS_TAGS)
"""Tags the minion fires itself (the master caches their grains): never from a job."""

OnEvent = Callable[[str, dict], None]


def check_event(tag: object, data: object) -> MinionEvent:
    """The event, checked as the master will check it (and against the reserved tags); CommandError if not."""
    try:
        ev = MinionEvent.from_wire({"tag": tag, "data": data})
    except ProtocolError as exc:
        raise CommandError(f"event: {exc}") from None
    if ev.tag in RESERVED_TAGS:
        raise CommandError(f"event tag {ev.tag!r} is the minion's own (reserved: {', '.join(sorted(RESERVED_TAGS))})")
    return ev


class EventWriter:
    """The job's end: `ctx.fire_event(tag, data)` writes one frame (blocking while the pipe is full)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.sent = 0

    def __call__(self, tag: str, data: dict) -> None:
        ev = check_event(tag, data)
        if self.sent >= MAX_JOB_EVENTS:
            raise CommandError(f"this job has fired {MAX_JOB_EVENTS} events, the most one job may")
        try:
            payload = encode(ev.to_wire())
        except (TypeError, ValueError, OverflowError) as exc:
            raise CommandError(f"event data cannot be sent: {exc}") from None
        if len(payload) > MAX_EVENT_BYTES:
            raise CommandError(f"event is {len(payload)} bytes encoded, over the {MAX_EVENT_BYTES}-byte limit")
        view = memoryview(len(payload).to_bytes(4, "big") + payload)
        try:
            while view:
                view = view[os.write(self.fd, view):]
        except BrokenPipeError:
            raise CommandError("the minion no longer takes this job's events") from None
        self.sent += 1


class EventReader:
    """The minion's end: reads the pipe until the job closes it, handing each good event to `on_event`.
    `done` is set at end of file; `close()` (idempotent) stops reading.  A frame over the limits
    ends the reading (logged)."""

    def __init__(self, fd: int, jid: str, on_event: OnEvent) -> None:
        self.fd, self.jid, self.on_event = fd, jid, on_event
        self.count = 0
        self._buf = bytearray()
        self._loop = asyncio.get_running_loop()
        self.done: asyncio.Future = self._loop.create_future()
        os.set_blocking(fd, False)
        self._loop.add_reader(fd, self._readable)

    def close(self) -> None:
        if self.fd >= 0:
            self._loop.remove_reader(self.fd)
            os.close(self.fd)
            self.fd = -1
        if not self.done.done():
            self.done.set_result(None)

    def _readable(self) -> None:
        try:
            while chunk := os.read(self.fd, 1 << 16):
                self._buf.extend(chunk)
                if not self._frames():
                    break
            else:
                self.close()
        except BlockingIOError:
            pass

    def _frames(self) -> bool:
        """Deliver the complete frames buffered; False if the reading had to stop."""
        buf = self._buf
        while len(buf) >= 4:
            size = int.from_bytes(buf[:4], "big")
            if size > MAX_EVENT_BYTES or self.count >= MAX_JOB_EVENTS:
                log.warning("job %s: stopped reading its events: %s", self.jid,
                            "a frame over the size limit" if size > MAX_EVENT_BYTES else "too many")
                self.close()
                return False
            if len(buf) < 4 + size:
                break
            frame = bytes(buf[4:4 + size])
            del buf[:4 + size]
            self.count += 1
            _deliver(frame, self.jid, self.on_event)
        return True


def _deliver(frame: bytes, jid: str, on_event: OnEvent) -> None:
    try:
        obj = decode(frame, max_bytes=MAX_EVENT_BYTES)
        ev = check_event(obj.get("tag") if isinstance(obj, dict) else None,
                         obj.get("data") if isinstance(obj, dict) else None)
    except (DecodeError, CommandError) as exc:
        log.warning("job %s: dropped an event: %s", jid, exc)
        return
    on_event(ev.tag, ev.data)
