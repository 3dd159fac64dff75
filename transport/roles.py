"""The transport's roles, as interfaces: what the master, the minion and the clients may ask
of the wire.  Nothing above `rx.transport` imports a socket library; it asks `open_transport()`
for these roles.  The zmq implementation is `rx.transport.zmq_transport`; a second transport
(TCP+TLS, websockets) implements the same protocols and is chosen here.

Addresses are strings: `tcp_url(host, port)` for the network, `ipc_url(path)` for sockets in the
master's private sock_dir.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable, Protocol, Sequence


class RequestTimeout(Exception):
    """No (usable) answer within the timeout, after all retries."""


class LinkEvent(enum.Enum):
    """A change of a subscriber's connection to its publisher."""

    CONNECTED = "connected"
    DISCONNECTED = "disconnected"


def tcp_url(host: str, port: int) -> str:
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"tcp://{host}:{port}"


def ipc_url(path: str) -> str:
    return "ipc://" + path


class RequestClient(Protocol):
    """Concurrent requests to one server; each reply finds its caller."""

    url: str

    async def request(self, obj: Any, timeout: float, retries: int = 0) -> Any:
        """Send `obj`, return the decoded reply; RequestTimeout after `retries` more tries."""

    def reset(self) -> None:
        """Drop the connection; the next request makes a new one."""

    async def aclose(self) -> None: ...


class Subscriber(Protocol):
    """Receives publications (raw frames) from a publisher, reconnecting by itself."""

    async def recv(self) -> bytes:
        """The next publication of a subscribed topic (without its topic)."""

    def link_events(self) -> AsyncIterator[LinkEvent]:
        """Connection changes, for catching up on what was published while disconnected
        (only when the subscriber was made with `watch_link=True`)."""

    def retopic(self, old: bytes | None, new: bytes) -> None:
        """Replace the subscription `old` (None: none) by `new` (a minion's presence claim, new session)."""

    def close(self) -> None: ...


Handler = Callable[[list[list[bytes]]], Awaitable[list[bytes]]]
"""Answers requests of one lane (each its body frames): the replies of the first one or more, in order; the
server keeps the requests not answered for the next call."""
Triage = Callable[[list[bytes]], int]
"""Which lane a request (its body frames) waits in: an index into the server's lanes."""


@dataclass(frozen=True)
class Lane:
    """A bounded queue of a request server.  A request that does not fit a full lane gets the lane's
    `shed` reply at once, or, when `shed` is empty, the server reads no more requests until the lane has
    room again (backpressure up to the senders; one request may overfill the lane)."""

    max_requests: int
    max_bytes: int
    shed: bytes = b""
    batch: int = 1
    """Most requests of the lane handed to its handler at once (several returns stored with one write)."""
    batch_bytes: int = 0
    """...and most bytes: a request that would take a batch past it waits for the next (the first one always
    goes), so a batch of large requests holds no more memory than one of them."""


@dataclass(frozen=True)
class Source:
    """Where a request server takes requests (a request router's worker end), and which lane each waits in."""

    url: str
    triage: Triage


class RequestServer(Protocol):
    """A worker's end of the request channel.  Before each call of a handler, it reads what every source
    has queued into the lanes; then it hands the first non-empty lane's first requests (up to the lane's
    `batch`) to that lane's handler.  So a request in a lane waits at most for the requests being handled
    and those in the lanes before it."""

    async def serve(self, handlers: Sequence[Handler]) -> None:
        """Answer requests until cancelled: `handlers[i]([body frames, ...]) -> [reply bytes, ...]` for lane i."""

    def close(self) -> None: ...


class FrameSink(Protocol):
    """One-way frames to a local relay (publications to the publisher, each under a topic of
    rx.transport.topics)."""

    async def send(self, frame: bytes, topic: bytes) -> None: ...

    def close(self) -> None: ...


class EventSink(Protocol):
    """Fires events into the master's local bus."""

    async def fire(self, tag: str, data: dict) -> None: ...

    async def fire_many(self, events: Sequence[tuple[str, dict]]) -> None:
        """Fire several (tag, data) events; those of one job's returns may travel as one message (the
        event sources take them apart)."""

    def close(self) -> None: ...


class EventSource(Protocol):
    """Events from the master's bus whose tag starts with one of the subscribed prefixes; the
    subscription is proven live before the source is handed out, so nothing fired later is missed."""

    async def batch(self, timeout: float) -> list[tuple[str, dict]]:
        """Wait up to `timeout` s for events, then take every one already queued."""

    def close(self) -> None: ...


class Transport(Protocol):
    """Makes the roles; one per process (made after any fork)."""

    def request_client(self, url: str, *, untrusted: bool = False) -> RequestClient:
        """`untrusted`: replies come from the network and are scanned before decoding."""

    def subscriber(self, url: str, topics: Sequence[bytes], *, watch_link: bool = False) -> Subscriber:
        """Subscribed to exactly `topics` (rx.transport.topics)."""

    def request_server(self, sources: Sequence[Source], lanes: Sequence[Lane]) -> RequestServer:
        """One server for request routers' worker ends (the network, the local socket)."""

    def frame_sink(self, url: str) -> FrameSink: ...

    def event_sink(self, url: str) -> EventSink: ...

    async def event_source(self, pub_url: str, pull_url: str, prefixes: Sequence[str], *,
                           timeout: float = 5.0) -> EventSource:
        """Subscribe to the bus and prove it with a round trip; RequestTimeout if the bus is dead."""

    def close(self) -> None: ...


class PresenceSink(Protocol):
    """What the publish fan-out asks about presence claims (rx.transport.presence) and tells of them."""

    def verify(self, claim: Any) -> str | None:
        """The id of the accepted minion that made a parsed claim (rx.transport.presence.Claim) with its
        session key; None if none did."""

    def publish(self, minions: dict[str, dict]) -> None:
        """Who holds a claim now, `{id: {"since", "addr", "connections"}}` (called at most twice a second)."""


class Devices(Protocol):
    """The master's relays, each blocking its own process (or thread) until the transport ends."""

    def request_router(self, front: Sequence[str], back: str, backlog: int = ...) -> None:
        """Requests from `front` (bound, `backlog`: its listen queue) go to the workers connected at `back`."""

    def publish_fanout(self, pull: str, pub: str, report: Callable[..., None] = ...,
                       presence: PresenceSink | None = None, backlog: int = ...) -> None:
        """Publications pushed to `pull` go out on `pub` to the subscribers of their topic; a subscriber
        that asks for any other topic is dropped, and `report(format, *args)` told.  With `presence`, the
        presence claims subscribers send are checked and counted, and who holds one is published."""

    def event_relay(self, pull: str, pub: str, dropped: Callable[[int], None] | None = None) -> None:
        """Events pushed to `pull` go out on `pub`; with `dropped`, it is told how many some subscriber missed."""


def open_transport(kind: str = "zmq", shared: Any = None) -> Transport:
    """The transport for this process (`shared`: a context to share, e.g. across the swarm's minions)."""
    if kind != "zmq":
        raise ValueError(f"unknown transport {kind!r}")
    from rx.transport.zmq_transport import ZmqTransport
    return ZmqTransport(shared)


def devices(kind: str = "zmq") -> Devices:
    if kind != "zmq":
        raise ValueError(f"unknown transport {kind!r}")
    from rx.transport import zmq_devices
    return zmq_devices


def library_versions(kind: str = "zmq") -> dict[str, str]:
    """Versions of the transport's native libraries, for `rx --versions-report`."""
    if kind != "zmq":
        return {}
    import zmq
    return {"libzmq": zmq.zmq_version()}
