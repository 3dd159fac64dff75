"""The zmq implementation of the transport roles (rx.transport.roles), on asyncio.

Sockets come from a context created in the process that uses it (after any fork).  Every
inbound frame is handed upward as bytes; decoding and authentication happen in the sans-IO
layers.  This module, rx.transport.zmq_events (the event bus) and rx.transport.zmq_devices are the only
places that import zmq.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from typing import Any, AsyncIterator, Sequence

import zmq
import zmq.asyncio

from rx.transport.codec import MAX_FRAME_BYTES, MAX_OBJECTS, NETWORK_MAX_OBJECTS, DecodeError, decode, encode
from rx.transport.roles import Handler, Lane, LinkEvent, RequestTimeout, Source, Triage
from rx.transport.zmq_events import ZmqEventSink, ZmqEventSource, open_event_source
from rx.transport.zmq_devices import KEEPALIVE, REPLY_HWM, WORKER_HWM

log = logging.getLogger(__name__)

RECONNECT_MS = 200
RECONNECT_MAX_MS = 5_000
WORKER_RECONNECT_MS = 20
"""Workers reconnect this fast, so they are back within 20 ms of a request-server restart."""
READ_BURST = 256
"""Most requests a worker reads from one source into its lanes before it answers the next one."""
GATHER_SECONDS = 0.002
"""Under a steady stream of requests (STEADY_REQUESTS in a STEADY_SECONDS), a worker woken for a request waits
this long before it reads, so that it finds several: each wake-up costs the worker, its libzmq I/O thread and
the request server a hand-off (with one request in flight, a request and its reply between two processes cost
~130 µs of CPU on our two-core VM, with 64 together ~6 µs each: bench/return_cost.py); at 2,000 returns/s this
took the master's CPU per return from 476 to 344 µs (bench/returns.py, paced; one run each).  A burst such as
the returns of a ping to 50 minions is not steady and is not delayed."""
STEADY_SECONDS = 0.1
STEADY_REQUESTS = 50
_EVENTS, _POLLIN, _POLLOUT, _RCVMORE, _NOBLOCK, _SNDMORE = map(
    int, (zmq.EVENTS, zmq.POLLIN, zmq.POLLOUT, zmq.RCVMORE, zmq.NOBLOCK, zmq.SNDMORE))
"""Plain ints for the request server's per-request zmq calls (the enum members cost a microsecond a use)."""


async def recv_multipart(sock: zmq.asyncio.Socket) -> list[bytes]:
    """recv_multipart that survives a spurious wake-up.

    libzmq can report a socket readable and then drop the message (a REP socket discards
    requests without an envelope delimiter), so the recv raises EAGAIN: not an error, just
    nothing to read yet.
    """
    while True:
        try:
            return await sock.recv_multipart()
        except zmq.Again:
            continue


def _client_options(sock: zmq.Socket) -> None:
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RECONNECT_IVL, RECONNECT_MS)
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, RECONNECT_MAX_MS)
    for option, value in KEEPALIVE.items():
        sock.setsockopt(option, value)
    sock.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME_BYTES)


class ZmqRequestClient:
    """Concurrent requests over one DEALER socket.

    Each request carries a request id as an envelope frame ([rid, b"", body]); the master's REP
    worker echoes the envelope, so replies find their caller and late replies to abandoned
    requests are dropped.
    """

    def __init__(self, ctx: zmq.asyncio.Context, url: str, max_objects: int = MAX_OBJECTS) -> None:
        self._ctx = ctx
        self.url = url
        self.max_objects = max_objects
        self._sock: zmq.asyncio.Socket | None = None
        self._waiting: dict[bytes, asyncio.Future] = {}
        self._ids = itertools.count(1)
        self._reader: asyncio.Task | None = None

    def _connect(self) -> zmq.asyncio.Socket:
        if self._sock is None:
            sock = self._ctx.socket(zmq.DEALER)
            _client_options(sock)
            sock.setsockopt(zmq.IMMEDIATE, 1)  # see `request`
            sock.connect(self.url)
            self._sock = sock
            self._reader = asyncio.get_running_loop().create_task(self._read(sock))
        return self._sock

    async def _read(self, sock: zmq.asyncio.Socket) -> None:
        while True:
            try:
                frames = await recv_multipart(sock)
            except (zmq.ZMQError, asyncio.CancelledError):
                return
            if len(frames) != 3 or frames[1] != b"":
                log.debug("dropping malformed reply from %s", self.url)
                continue
            fut = self._waiting.pop(frames[0], None)
            if fut is not None and not fut.done():
                fut.set_result(frames[2])

    async def request(self, obj: Any, timeout: float, retries: int = 0) -> Any:
        """The answer to `obj`, each attempt given `timeout` seconds, sending included.  A request is queued only
        on an established connection (ZMQ_IMMEDIATE): while the peer is down an attempt waits to be sent and
        times out, and what was queued when the connection dropped is dropped with it, instead of reaching a
        restarted master all at once, long after its senders stopped waiting (after a restart with 10,000
        minions, a flood of such stale `_auth`s and returns kept the master from answering live ones)."""
        body = encode(obj)
        for _attempt in range(retries + 1):
            rid = next(self._ids).to_bytes(8, "big")
            fut = asyncio.get_running_loop().create_future()
            self._waiting[rid] = fut
            sock = self._connect()
            try:
                async with asyncio.timeout(timeout):  # not wait_for: on 3.11 it loses a cancel that meets the reply
                    await sock.send_multipart([rid, b"", body])
                    raw = await fut
            except TimeoutError:
                continue
            finally:
                self._waiting.pop(rid, None)
            try:
                return decode(raw, max_objects=self.max_objects)
            except DecodeError as exc:
                raise RequestTimeout(f"undecodable reply from {self.url}: {exc}") from None
        raise RequestTimeout(f"no answer from {self.url} within {timeout:g}s (tried {retries + 1} times)")

    def reset(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            self._reader = None
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None

    async def aclose(self) -> None:
        self.reset()
        for fut in self._waiting.values():
            fut.cancel()
        self._waiting.clear()


_LINK = {zmq.EVENT_HANDSHAKE_SUCCEEDED: LinkEvent.CONNECTED, zmq.EVENT_DISCONNECTED: LinkEvent.DISCONNECTED}


class ZmqSubscriber:
    """A SUB socket with reconnect and TCP keepalive; with `watch_link`, a monitor socket attached before
    the first connect reports every (re)connection."""

    def __init__(self, ctx: zmq.asyncio.Context, url: str, topics: Sequence[bytes], watch_link: bool) -> None:
        sock = ctx.socket(zmq.SUB)
        _client_options(sock)
        sock.setsockopt(zmq.RCVHWM, 100_000)
        for topic in topics:
            sock.setsockopt(zmq.SUBSCRIBE, topic)
        self._monitor = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED) \
            if watch_link else None
        sock.connect(url)
        self._sock = sock

    async def recv(self) -> bytes:
        return (await recv_multipart(self._sock))[-1]

    async def link_events(self) -> AsyncIterator[LinkEvent]:
        if self._monitor is None:
            return
        from zmq.utils.monitor import parse_monitor_message
        while True:
            event = _LINK.get(parse_monitor_message(await recv_multipart(self._monitor))["event"])
            if event is not None:
                yield event

    def retopic(self, old: bytes | None, new: bytes) -> None:
        if old is not None:
            self._sock.setsockopt(zmq.UNSUBSCRIBE, old)
        self._sock.setsockopt(zmq.SUBSCRIBE, new)

    def close(self) -> None:
        if self._monitor is not None:
            self._monitor.close(linger=0)
        self._sock.close(linger=0)


class ZmqRequestServer:
    """A DEALER per source, connected to a request router's worker end, and one task.  While nothing is
    queued it waits for a source to signal; otherwise it reads what the sources have queued into the
    lanes, answers the first requests of the first non-empty lane (up to its batch) and starts again.  The
    sockets are used through zmq's non-blocking calls and one file-descriptor watch each (fewer wake-ups than
    a future per receive)."""

    def __init__(self, ctx: zmq.asyncio.Context, sources: Sequence[Source], lanes: Sequence[Lane]) -> None:
        blocking_api = zmq.Context.shadow(ctx.underlying)
        self._sources: list[tuple[zmq.Socket, Triage]] = []
        for source in sources:
            sock = blocking_api.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.RECONNECT_IVL, WORKER_RECONNECT_MS)
            sock.setsockopt(zmq.RCVHWM, WORKER_HWM)
            sock.setsockopt(zmq.SNDHWM, REPLY_HWM)
            sock.connect(source.url)
            self._sources.append((sock, source.triage))
        self._lanes = list(lanes)
        self._queues: list[deque[tuple[zmq.Socket, list[bytes], list[bytes], int]]] = [deque() for _ in self._lanes]
        self._bytes = [0] * len(self._lanes)
        self._held = [i for i, lane in enumerate(self._lanes) if not lane.shed]
        """The lanes that hold back reading when full (those without a shed reply)."""
        self._signal = asyncio.Event()
        self._steady = _Steady()

    async def serve(self, handlers: Sequence[Handler]) -> None:
        loop = asyncio.get_running_loop()
        for sock, _ in self._sources:
            loop.add_reader(sock.FD, self._signalled)
        try:
            while True:
                if not any(self._queues):
                    await self._until(_POLLIN)
                    if self._steady.now(loop.time()):
                        await asyncio.sleep(GATHER_SECONDS)
                await self._read()
                lane = next((i for i, q in enumerate(self._queues) if q), None)
                if lane is not None:
                    await self._answer(lane, handlers[lane])
        finally:
            for sock, _ in self._sources:
                loop.remove_reader(sock.FD)

    async def _read(self) -> None:
        """Read what the sources have queued into the lanes (a burst each, while the lanes have room)."""
        for sock, triage in self._sources:
            for _ in range(READ_BURST):
                if self._full():
                    break
                try:
                    frames = [sock.recv(_NOBLOCK)]
                except zmq.Again:  # (no EVENTS check per request: it is a poll(2) each time)
                    break
                while sock.get(_RCVMORE):
                    frames.append(sock.recv(_NOBLOCK))
                await self._take(sock, frames, triage)

    async def _answer(self, lane: int, handle: Handler) -> None:
        """Hand the first requests of `lane` (up to its batch) to its handler and send the replies; requests it
        did not answer go back to the front of the lane.  A method, so that neither the requests nor their
        replies stay referenced while the server waits for the next ones (large returns would stay in memory)."""
        queue, most, room = self._queues[lane], self._lanes[lane].batch, self._lanes[lane].batch_bytes
        taken = [queue.popleft()]
        room -= taken[0][3]
        while queue and len(taken) < most and queue[0][3] <= room:
            room -= queue[0][3]
            taken.append(queue.popleft())
        replies = await handle([body for _sock, _envelope, body, _size in taken])
        for (sock, envelope, _body, size), reply in zip(taken, replies):
            self._bytes[lane] -= size
            await self._send(sock, [*envelope, reply])
        queue.extendleft(reversed(taken[len(replies):]))

    def _signalled(self) -> None:
        # zmq's descriptor is edge-triggered: reading EVENTS re-arms it (else the loop would spin on it)
        for sock, _ in self._sources:
            sock.get(_EVENTS)
        self._signal.set()

    async def _until(self, event: int, sock: zmq.Socket | None = None) -> None:
        """Until `sock` (or any source) can do `event` without blocking."""
        socks = [sock] if sock is not None else [s for s, _ in self._sources]
        while True:
            self._signal.clear()
            if any(s.get(_EVENTS) & event for s in socks):
                return
            await self._signal.wait()

    async def _take(self, sock: zmq.Socket, frames: list[bytes], triage: Triage) -> None:
        """Queue one request in its lane, or answer it at once with its lane's shed reply."""
        try:
            cut = frames.index(b"")
        except ValueError:
            return  # no envelope delimiter: not a request (a REP socket drops these too)
        envelope, body = frames[:cut + 1], frames[cut + 1:]
        size = sum(map(len, body))
        i = triage(body)
        lane, queue = self._lanes[i], self._queues[i]
        if lane.shed and (len(queue) >= lane.max_requests or self._bytes[i] + size > lane.max_bytes):
            await self._send(sock, [*envelope, lane.shed])
            return
        queue.append((sock, envelope, body, size))
        self._bytes[i] += size
        self._steady.count += 1

    def _full(self) -> bool:
        """A lane without a shed reply is full: read no more (what waits stays in zmq, then in TCP)."""
        for i in self._held:
            if len(self._queues[i]) >= self._lanes[i].max_requests or self._bytes[i] >= self._lanes[i].max_bytes:
                return True
        return False

    async def _send(self, sock: zmq.Socket, frames: list[bytes]) -> None:
        """Send a reply (envelope and body); zmq takes every part of a message once it took the first."""
        first, *rest = frames
        while True:
            try:
                sock.send(first, (_SNDMORE if rest else 0) | _NOBLOCK)
                break
            except zmq.Again:  # REPLY_HWM replies already wait for the router: wait for room
                await self._until(_POLLOUT, sock)
        for i, part in enumerate(rest, 1):
            sock.send(part, _SNDMORE if i < len(rest) else 0)

    def close(self) -> None:
        for sock, _ in self._sources:
            sock.close(linger=0)


class _Steady:
    """Whether requests have been coming steadily: at least STEADY_REQUESTS in the last full STEADY_SECONDS."""

    def __init__(self) -> None:
        self.count = 0
        self.since = 0.0
        self.steady = False

    def now(self, t: float) -> bool:
        if t - self.since >= STEADY_SECONDS:
            self.steady = self.count >= STEADY_REQUESTS and t - self.since < 2 * STEADY_SECONDS
            self.count, self.since = 0, t
        return self.steady


class ZmqFrameSink:
    def __init__(self, ctx: zmq.asyncio.Context, url: str, linger_ms: int = 2000) -> None:
        self._sock = ctx.socket(zmq.PUSH)
        self._sock.setsockopt(zmq.LINGER, linger_ms)
        self._sock.setsockopt(zmq.SNDHWM, 100_000)
        self._sock.connect(url)

    async def send(self, frame: bytes, topic: bytes) -> None:
        await self._sock.send_multipart([topic, frame])

    def close(self) -> None:
        self._sock.close()


class ZmqTransport:
    def __init__(self, shared: zmq.asyncio.Context | None = None) -> None:
        self._own = shared is None
        self.ctx: zmq.asyncio.Context = shared if shared is not None else zmq.asyncio.Context()

    def request_client(self, url: str, *, untrusted: bool = False) -> ZmqRequestClient:
        return ZmqRequestClient(self.ctx, url, NETWORK_MAX_OBJECTS if untrusted else MAX_OBJECTS)

    def subscriber(self, url: str, topics: Sequence[bytes], *, watch_link: bool = False) -> ZmqSubscriber:
        return ZmqSubscriber(self.ctx, url, topics, watch_link)

    def request_server(self, sources: Sequence[Source], lanes: Sequence[Lane]) -> ZmqRequestServer:
        return ZmqRequestServer(self.ctx, sources, lanes)

    def frame_sink(self, url: str) -> ZmqFrameSink:
        return ZmqFrameSink(self.ctx, url)

    def event_sink(self, url: str) -> ZmqEventSink:
        return ZmqEventSink(self.ctx, url)

    async def event_source(self, pub_url: str, pull_url: str, prefixes: Sequence[str], *,
                           timeout: float = 5.0) -> ZmqEventSource:
        return await open_event_source(self.ctx, pub_url, pull_url, prefixes, timeout)

    def close(self) -> None:
        if self._own:
            self.ctx.destroy(linger=0)
