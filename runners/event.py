"""The master's event bus from the command line: watch it, or fire an event on it.  Both need the
master running on this host and run as its user (the bus is IPC in the master's 0700 sock_dir)."""

from __future__ import annotations

import fnmatch
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

from rx.client.output import out_json
from rx.client.results import MasterUnreachable
from rx.client.termsafe import escape_controls
from rx.runners import BadRequest, CommandError, RunnerContext

__all__ = ["send", "watch"]

log = logging.getLogger("rx.runners.event")

TAG_MAX_CHARS = 512
"""Longest tag event.send fires (the limit of the tags minions fire, too)."""
DATA_MAX_BYTES = 1024 * 1024
"""Largest payload event.send fires, msgpack-encoded: the bus carries events to every watcher, it is no
file transfer."""
RESERVED_PREFIX = "rx/"
"""rx's own events (jobs, returns, keys, minions): nobody else fires under it, so nothing that waits for one
of them (a client gathering returns, a script waiting for a minion's start) can be fooled."""
_GLOB = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class _Fired:
    tag: str
    data: dict

    def to_wire(self) -> dict:
        return self.data


def _event_service(ctx: RunnerContext) -> Any:
    from rx.master.services import event_service
    return event_service(ctx.cfg)


async def send(ctx: RunnerContext, tag: Any, data: Any = None) -> bool:
    """Fire an event with this tag and data (a mapping) on the master's bus; return True.

    Tags are 1-512 printable characters; `rx/...` is rx's own namespace and refused.  The data, encoded,
    is at most 1 MiB.  Watchers see it at once (rx-run state.event).

    CLI example: rx-run event.send myapp/deploy/done '{version: 42, ok: true}'
    """
    from rx.transport.codec import encode
    if not isinstance(tag, str):
        raise BadRequest(f"event.send: the tag must be text, got {type(tag).__name__} {tag!r}")
    if not tag or len(tag) > TAG_MAX_CHARS or not tag.isprintable():
        raise BadRequest(f"event.send: the tag must be 1-{TAG_MAX_CHARS} printable characters (no tabs or newlines); "
                         f"got {len(tag)} characters")
    if tag.startswith(RESERVED_PREFIX):
        raise BadRequest(f"event.send: tags under {RESERVED_PREFIX!r} are rx's own events (jobs, returns, keys, "
                         "minions); use a prefix of your own, e.g. myapp/...")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise BadRequest(f"event.send: the data must be a mapping, e.g. '{{key: value}}'; got {type(data).__name__}")
    size = len(encode(data))
    if size > DATA_MAX_BYTES:
        raise BadRequest(f"event.send: the data is {size} bytes encoded, over the {DATA_MAX_BYTES}-byte limit of an "
                         "event; put large content in a file and send its path")
    events = _event_service(ctx)
    try:
        if not await events.fire([_Fired(tag, data)]):
            raise MasterUnreachable("the master is not running on this host (no event bus); start it with rx-master -d")
    finally:
        events.close()
    return True


def _prefix(tagmatch: str) -> str:
    """The literal start of a glob: what the bus subscription can filter on."""
    match = _GLOB.search(tagmatch)
    return tagmatch[:match.start()] if match else tagmatch


def format_event(tag: str, data: dict, pretty: bool = False) -> str:
    """`tag<TAB>json` on one line, or with the JSON indented over several lines (`pretty`)."""
    return f"{escape_controls(tag)}\t{out_json(data, indent=4 if pretty else None)}"


async def watch(ctx: RunnerContext, tagmatch: str = "*", count: int = -1, quiet: bool = False,
                pretty: bool = False) -> Any:
    """Print the master's events whose tag matches a glob, one `tag<TAB>json` line each, as they come.

    `count`: stop after that many matching events (-1: until interrupted, or `rx-run -t` seconds);
    `quiet`: print nothing, only wait (a script waiting for an event); `pretty`: indent the JSON.
    Events fired before the watch started are not shown.  With -t, fewer than `count` events by then
    is a failure (exit 1).

    CLI example: rx-run event.watch 'rx/minion/*/start' count=1
    """
    from rx.master.services import MasterNotRunning
    tagmatch, count = str(tagmatch), int(count)
    events = _event_service(ctx)
    try:
        try:
            source = await events.subscribe((_prefix(tagmatch),))
        except MasterNotRunning as exc:
            raise MasterUnreachable(str(exc)) from None
        log.info("watching the master's events matching %r", tagmatch)
        deadline = time.monotonic() + ctx.timeout if ctx.timeout else None
        seen = 0
        try:
            while count < 0 or seen < count:
                left = 1.0 if deadline is None else deadline - time.monotonic()
                if left <= 0:
                    break
                for tag, data in await source.batch(min(left, 1.0)):
                    if not fnmatch.fnmatchcase(tag, tagmatch):
                        continue
                    if not quiet:
                        ctx.emit(format_event(tag, data, pretty))
                    seen += 1
                    if seen == count:
                        break
        finally:
            source.close()
    finally:
        events.close()
    if 0 <= seen < count:
        raise CommandError(f"event.watch: {seen} of {count} matching event(s) within {ctx.timeout:g}s")
    return None
