"""The master's event bus on zmq: firing events into it (PUSH to the event publisher's PULL) and
subscribing to it (SUB to its PUB), with several of a job's returns in one message when they are fired
together (rx.transport.tags.batch_prefix); every consumer reads the bus through ZmqEventSource, which
takes those apart."""

from __future__ import annotations

import secrets
import time
from typing import Sequence

import zmq
import zmq.asyncio

from rx.transport.codec import DecodeError, decode, encode
from rx.transport.roles import RequestTimeout
from rx.transport.tags import SYNC_PREFIX, batch_prefix, subscription, sync_tag

SYNC_MAX_WAIT_MS = 50
_NOBLOCK, _SNDMORE = int(zmq.NOBLOCK), int(zmq.SNDMORE)


class ZmqEventSink:
    """Fires events into the bus: [tag, msgpack data]; several of one batch prefix (rx.transport.tags: a job's
    returns) as one message of three frames, [prefix, count, [suffix, data, suffix, data...]] (`batch_frames`),
    each tag being prefix + suffix.  A message is handed to zmq at once when its queue has room (it nearly always
    has: 100,000 messages), without an asyncio future; else it waits for room."""

    def __init__(self, ctx: zmq.asyncio.Context, url: str) -> None:
        self._sock = ctx.socket(zmq.PUSH)
        self._sock.setsockopt(zmq.LINGER, 1000)
        self._sock.setsockopt(zmq.SNDHWM, 100_000)
        self._sock.connect(url)
        self._now = zmq.Socket.shadow(self._sock.underlying)
        self._waiting = 0

    async def fire(self, tag: str, data: dict) -> None:
        await self._put([tag.encode(), encode(data)])

    async def fire_many(self, events: Sequence[tuple[str, dict]]) -> None:
        batches: dict[str, list[tuple[str, bytes]]] = {}
        for tag, data in events:
            prefix = batch_prefix(tag)
            if prefix is None:
                await self.fire(tag, data)
            else:
                batches.setdefault(prefix, []).append((tag[len(prefix):], encode(data)))
        for prefix, pairs in batches.items():
            if len(pairs) == 1:
                await self._put([(prefix + pairs[0][0]).encode(), pairs[0][1]])
            else:
                await self._put(batch_frames(prefix, pairs))

    async def _put(self, frames: list[bytes]) -> None:
        if not self._waiting:  # nothing queued behind a full queue: this one may go first
            try:
                self._now.send(frames[0], _SNDMORE | _NOBLOCK)
            except zmq.Again:
                pass
            else:  # zmq takes every part of a message once it took the first
                for i in range(1, len(frames)):
                    self._now.send(frames[i], _SNDMORE if i < len(frames) - 1 else 0)
                return
        self._waiting += 1
        try:
            await self._sock.send_multipart(frames)
        finally:
            self._waiting -= 1

    def close(self) -> None:
        self._sock.close()


class ZmqEventSource:
    def __init__(self, sock: zmq.asyncio.Socket, keep: tuple[str, ...] | None = None) -> None:
        self._sock = sock
        self._keep = keep
        """The prefixes asked for, when some subscription is broader (rx.transport.tags.subscription)."""

    async def batch(self, timeout: float) -> list[tuple[str, dict]]:
        """One wake-up per burst, not one per event (a job to 10,000 minions); malformed events are skipped."""
        if not await self._sock.poll(max(1, int(timeout * 1000))):
            return []
        raw = zmq.Socket.shadow(self._sock.underlying)
        out: list[tuple[str, dict]] = []
        while True:
            try:
                frames = raw.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            out.extend(_events(frames))
        if self._keep is not None:
            out = [(tag, data) for tag, data in out if tag.startswith(self._keep)]
        return out

    def close(self) -> None:
        self._sock.close(linger=0)


BATCH_COUNT_DIGITS = 6
"""Longest count frame a batch may carry (a batch holds at most a worker's lane of returns)."""


def batch_frames(prefix: str, pairs: Sequence[tuple[str, bytes]]) -> list[bytes]:
    """A batch as one bus message: [prefix, how many events (decimal, for the relay's drop count), msgpack of
    [suffix, data, suffix, data...]], each data still its own msgpack document (bin), so that each event is
    decoded within the limits it would have alone.  Three frames whatever the batch's size: zmq costs a call
    per frame on both ends, and the event relay a Python object per frame."""
    return [prefix.encode(), str(len(pairs)).encode(), encode([x for pair in pairs for x in pair])]


def batch_count(frames: int, count: bytes) -> int:
    """How many events a bus message of `frames` frames, the second being `count`, carries (1 unless it is a
    well-formed batch's)."""
    if frames == 3 and 0 < len(count) <= BATCH_COUNT_DIGITS and count.isdigit():
        return int(count)
    return 1


def _events(frames: list[bytes]) -> list[tuple[str, dict]]:
    """The events of one bus message: [tag, data], or a batch (`batch_frames`); what is malformed is skipped."""
    if frames[0].startswith(SYNC_PREFIX.encode()):
        return []
    try:
        head = frames[0].decode()
    except UnicodeDecodeError:
        return []
    if len(frames) == 2:
        pairs = [(head, frames[1])]
    elif len(frames) == 3 and frames[1].isdigit():
        try:
            flat = decode(frames[2])
        except DecodeError:
            return []
        if not isinstance(flat, list) or len(flat) % 2:
            return []
        pairs = [(head + suffix, raw) for suffix, raw in zip(flat[0::2], flat[1::2]) if isinstance(suffix, str)]
    else:
        return []
    out = []
    for tag, raw in pairs:
        try:
            data = decode(raw)
        except DecodeError:
            continue
        if isinstance(data, dict):
            out.append((tag, data))
    return out


async def open_event_source(ctx: zmq.asyncio.Context, pub_url: str, pull_url: str, prefixes: Sequence[str],
                            timeout: float) -> ZmqEventSource:
    """Subscribe to the bus and prove it with a round trip (a sync token fired and seen)."""
    token = sync_tag(secrets.token_hex(8)).encode()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.RCVHWM, 1_000_000)
    subscriptions = [subscription(p) for p in prefixes]
    for p in (*subscriptions, token.decode()):
        sub.setsockopt(zmq.SUBSCRIBE, p.encode())
    keep = tuple(prefixes) if subscriptions != list(prefixes) else None
    sub.connect(pub_url)
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 0)
    push.connect(pull_url)
    deadline = time.monotonic() + timeout
    wait_ms = 1
    try:
        while time.monotonic() < deadline:
            await push.send_multipart([token, encode({})])
            if await sub.poll(wait_ms) and await _first_frame(sub) == token:
                sub.setsockopt(zmq.UNSUBSCRIBE, token)
                return ZmqEventSource(sub, keep)
            wait_ms = min(wait_ms * 2, SYNC_MAX_WAIT_MS)
    finally:
        push.close(linger=0)
    sub.close(linger=0)
    raise RequestTimeout(f"the event bus at {pub_url} does not answer")


async def _first_frame(sock: zmq.asyncio.Socket) -> bytes:
    """The first frame of a message said to be waiting (b"" if libzmq dropped it meanwhile)."""
    try:
        return (await sock.recv_multipart(zmq.NOBLOCK))[0]
    except zmq.Again:
        return b""
