"""zmq channels on asyncio: request client, proxies, subscriber and the event bus.

Sockets are made from a context created in the process that uses it (after any
fork).  Every inbound frame is handed upward as bytes; decoding and
authentication happen in the sans-IO layers.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
from typing import Any, Callable

import zmq
import zmq.asyncio

from rx.transport.codec import MAX_FRAME_BYTES, DecodeError, decode, encode, objects_within

log = logging.getLogger(__name__)

HEARTBEAT_MS = 5_000
HEARTBEAT_TIMEOUT_MS = 15_000
RECONNECT_MS = 200
RECONNECT_MAX_MS = 5_000


class RequestTimeout(Exception):
    """No answer from the master within the timeout, after all retries."""


def tcp_url(host: str, port: int) -> str:
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"tcp://{host}:{port}"


async def recv_multipart(sock: zmq.asyncio.Socket) -> list[bytes]:
    """recv_multipart that survives a spurious wake-up.

    libzmq can report a socket readable and then drop the message (a REP
    socket discards requests without an envelope delimiter), so the recv
    raises EAGAIN: that is not an error, just nothing to read yet.
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
    sock.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_MS)
    sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT_MS)
    sock.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME_BYTES)


class ReqClient:
    """Concurrent requests over one DEALER socket.

    Each request carries a request id as an envelope frame ([rid, b"", body]); the
    master's REP worker echoes the envelope, so replies find their caller and
    late replies to abandoned requests are dropped.
    """

    def __init__(self, ctx: zmq.asyncio.Context, url: str, max_objects: int | None = None) -> None:
        """`max_objects`: replies from an untrusted peer (the network) are scanned before decoding."""
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
        """Send `obj`, return the decoded reply; RequestTimeout after `retries` more tries."""
        body = encode(obj)
        for _attempt in range(retries + 1):
            rid = next(self._ids).to_bytes(8, "big")
            fut = asyncio.get_running_loop().create_future()
            self._waiting[rid] = fut
            sock = self._connect()
            try:
                await sock.send_multipart([rid, b"", body])
                raw = await asyncio.wait_for(fut, timeout)
            except asyncio.TimeoutError:
                continue
            finally:
                self._waiting.pop(rid, None)
            try:
                if self.max_objects is not None and not objects_within(raw, self.max_objects):
                    raise DecodeError(f"more than {self.max_objects} objects")
                return decode(raw)
            except DecodeError as exc:
                raise RequestTimeout(f"undecodable reply from {self.url}: {exc}") from None
        raise RequestTimeout(f"no answer from {self.url} within {timeout:g}s (tried {retries + 1} times)")

    def reset(self) -> None:
        """Drop the socket (a new one is made on the next request)."""
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


def subscriber(ctx: zmq.asyncio.Context, url: str, prefixes: tuple[bytes, ...] = (b"",),
               before_connect: Callable[[zmq.asyncio.Socket], None] | None = None) -> zmq.asyncio.Socket:
    """A SUB socket with reconnect and heartbeats, subscribed to `prefixes`; `before_connect` runs on the
    socket first (e.g. to attach a monitor that must see the first connection)."""
    sock = ctx.socket(zmq.SUB)
    _client_options(sock)
    sock.setsockopt(zmq.RCVHWM, 100_000)
    for p in prefixes:
        sock.setsockopt(zmq.SUBSCRIBE, p)
    if before_connect is not None:
        before_connect(sock)
    sock.connect(url)
    return sock


def run_proxy(front_type: int, front_binds: list[str], back_type: int, back_bind: str, *,
              front_hwm: int = 100_000) -> None:
    """Blocking zmq proxy (C speed) between a front socket and a back socket; returns when the context ends."""
    ctx = zmq.Context()
    front = ctx.socket(front_type)
    back = ctx.socket(back_type)
    for s in (front, back):
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.SNDHWM, front_hwm)
        s.setsockopt(zmq.RCVHWM, front_hwm)
    front.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME_BYTES)
    for url in front_binds:
        front.bind(url)
    back.bind(back_bind)
    _restrict_ipc(front_binds + [back_bind])
    try:
        zmq.proxy(front, back)
    except zmq.ContextTerminated:
        pass
    finally:
        front.close(linger=0)
        back.close(linger=0)
        ctx.term()


def _restrict_ipc(urls: list[str]) -> None:
    for url in urls:
        if url.startswith("ipc://"):
            os.chmod(url[len("ipc://"):], 0o600)


def ipc(path: str) -> str:
    return "ipc://" + path


class EventBus:
    """Fire events into the master's bus (PUSH to master_event_pull.ipc)."""

    def __init__(self, ctx: zmq.asyncio.Context, pull_path: str) -> None:
        self._sock = ctx.socket(zmq.PUSH)
        self._sock.setsockopt(zmq.LINGER, 1000)
        self._sock.setsockopt(zmq.SNDHWM, 100_000)
        self._sock.connect(ipc(pull_path))

    async def fire(self, tag: str, data: dict) -> None:
        await self._sock.send_multipart([tag.encode(), encode(data)])

    def close(self) -> None:
        self._sock.close()


def event_subscriber(ctx: zmq.asyncio.Context, pub_path: str, prefixes: tuple[str, ...]) -> zmq.asyncio.Socket:
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVHWM, 1_000_000)
    for p in prefixes:
        sock.setsockopt(zmq.SUBSCRIBE, p.encode())
    sock.connect(ipc(pub_path))
    return sock


async def event_batch(sock: zmq.asyncio.Socket, timeout: float) -> list[tuple[str, dict]]:
    """Wait up to `timeout` seconds for events, then take every one already queued, without
    waiting again (a job to 10,000 minions is one wake-up per burst, not one per return).
    Malformed events are skipped."""
    if not await sock.poll(max(1, int(timeout * 1000))):
        return []
    raw = zmq.Socket.shadow(sock.underlying)
    out: list[tuple[str, dict]] = []
    while True:
        try:
            frames = raw.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return out
        if len(frames) != 2:
            continue
        try:
            tag, data = frames[0].decode(), decode(frames[1])
        except (UnicodeDecodeError, DecodeError):
            continue
        if isinstance(data, dict):
            out.append((tag, data))
