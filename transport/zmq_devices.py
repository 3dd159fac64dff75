"""The master's zmq relays, each blocking until its context ends: the request router (ROUTER ->
DEALER to the workers) and the event relay (PULL -> PUB on IPC), both C-speed `zmq.proxy`, and the
publish fan-out (PULL -> XPUB), a small loop that also decides every subscription.  IPC endpoints
are made 0600 (the sock_dir is 0700)."""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Callable, Sequence

import zmq

from rx.transport.codec import MAX_FRAME_BYTES
from rx.transport.presence import PresenceTable, is_claim, parse_claim
from rx.transport.roles import PresenceSink
from rx.transport.topics import is_topic
from rx.transport.zmq_events import batch_count

log = logging.getLogger("rx.master.publisher")

RELAY_HWM = 100_000
"""Messages queued in the publish fan-out and the event relay (local, trusted senders)."""
PEER_HWM = 2
"""Requests the request router queues per connected peer: when they wait, it stops reading that peer's
connection (TCP backpressure, nothing dropped), so one connection holds at most (PEER_HWM + 1) frames
in the router, however fast it sends."""
WORKER_HWM = 8
"""Requests the request router queues per worker, and the worker's socket another as many (each worker reads
them into its own bounded lanes).  A worker answers the returns it finds queued with one store write and one
event, so deeper queues mean larger batches: 2 cost ~310 µs of master CPU per return, 8 ~210 (bench/returns.py),
16 and 32 ~190 for 2x and 4x the bytes a flood of 16 MiB frames can park here (docs/security.md)."""
REPLY_HWM = 1000
"""Replies queued per peer; a peer that does not read its replies loses those beyond it."""
SUBSCRIPTION_MAX_BYTES = 64
"""Largest message a subscriber may send the publish port (the ZMTP handshake needs ~30 bytes, an rx
subscription 5, a presence claim 34): anything bigger makes libzmq drop the connection before storing a
byte of it."""
SUBSCRIPTION_HWM = 16
"""Subscription messages queued per subscriber (an rx minion sends 3)."""
KEEPALIVE = {zmq.TCP_KEEPALIVE: 1, zmq.TCP_KEEPALIVE_IDLE: 20, zmq.TCP_KEEPALIVE_INTVL: 5, zmq.TCP_KEEPALIVE_CNT: 3}
"""TCP keepalive on every network connection, master's and minion's: the kernel probes a connection idle for
20 s every 5 s and drops it after 3 probes unanswered, so a peer whose host vanished without closing its
connection (power off, a cable, a NAT that forgot the flow) is gone within ~35 s, and the probes keep NAT
entries alive.  It replaces ZMTP heartbeats, which cost a wake-up of the master's I/O thread per ping and
pong (0.18 CPU-seconds per second idle with 5,000 minions); the kernel answers probes at no cost to either
process.  A peer process that hangs with its host up keeps its connection: the client's probes
(`jobs.find`) tell such a minion apart, `[no response]`."""
BACKLOG = 4096
"""Listen queue of a relay's bound sockets (the master's `zmq_backlog`): when 10,000 minions connect at once (a
cold start, a master restart), connections beyond it are dropped by the kernel and tried again only 1, 3, 7, 15 s
later; libzmq's default of 100 made a 10,000-minion master restart take ~60 s to answer all (bench: ~30 s at 4096).
The kernel caps it at net.core.somaxconn."""
PRESENCE_FLUSH = 0.5
"""Seconds between two publications of the presence table (only when it changed)."""


def _run_proxy(front_type: int, front_binds: Sequence[str], back_type: int, back_bind: str,
               relay: Callable[[zmq.Socket, zmq.Socket], None] = zmq.proxy, back_options: dict | None = None, *,
               peer_hwm: int = RELAY_HWM, worker_hwm: int = RELAY_HWM, reply_hwm: int = RELAY_HWM,
               backlog: int = BACKLOG) -> None:
    """Bind both ends (IPC ones 0600, each with a listen queue of `backlog`) and run `relay(front, back)` until the
    context ends."""
    ctx = zmq.Context()
    front = ctx.socket(front_type)
    back = ctx.socket(back_type)
    for s in (front, back):
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.BACKLOG, backlog)
    front.setsockopt(zmq.RCVHWM, peer_hwm)
    front.setsockopt(zmq.SNDHWM, reply_hwm)
    back.setsockopt(zmq.SNDHWM, worker_hwm)
    back.setsockopt(zmq.RCVHWM, reply_hwm)
    front.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME_BYTES)
    for option, value in KEEPALIVE.items():  # no effect on IPC endpoints
        front.setsockopt(option, value)
    for option, value in (back_options or {}).items():
        back.setsockopt(option, value)
    for url in front_binds:
        front.bind(url)
    back.bind(back_bind)
    for url in [*front_binds, back_bind]:
        if url.startswith("ipc://"):
            os.chmod(url[len("ipc://"):], 0o600)
    try:
        relay(front, back)
    except zmq.ContextTerminated:
        pass
    finally:
        front.close(linger=0)
        back.close(linger=0)
        ctx.term()


def request_router(front: Sequence[str], back: str, backlog: int = BACKLOG) -> None:
    """Requests from `front` (bound) fair-queued to the workers connected at `back`, with small queues
    (PEER_HWM, WORKER_HWM): the backlog is bounded in frames per connection, not only in messages."""
    _run_proxy(zmq.ROUTER, front, zmq.DEALER, back, peer_hwm=PEER_HWM, worker_hwm=WORKER_HWM, reply_hwm=REPLY_HWM,
               backlog=backlog)


def publish_fanout(pull: str, pub: str, report: Callable[..., None] = log.warning,
                   presence: PresenceSink | None = None, backlog: int = BACKLOG) -> None:
    """[topic, publication] messages pushed to `pull` go out to the subscribers of that topic on `pub`.

    The XPUB takes subscriptions by hand (XPUB_MANUAL): only rx's own topics are applied.  libzmq
    keeps a record of every subscription a connection sent until it disconnects, whatever we do with
    it, so a connection that sends anything else is disconnected at once, releasing that record, and
    `report(format, *args)` is told (a network peer triggers it at will: the caller rate-limits it).
    With `presence`, a presence claim (rx.transport.presence) is not applied but checked: a verified one
    is counted until it is unsubscribed or its connection ends (libzmq then unsubscribes it for us), a
    forged one disconnects its connection; who holds a claim is published at most every PRESENCE_FLUSH
    seconds.  Connections have TCP keepalive (KEEPALIVE), so a host that vanished is dropped."""
    def relay(inp: zmq.Socket, out: zmq.Socket) -> None:
        port = int(out.getsockopt_string(zmq.LAST_ENDPOINT).rsplit(":", 1)[1])
        poller = zmq.Poller()
        poller.register(inp, zmq.POLLIN)
        poller.register(out, zmq.POLLIN)
        claims = _Claims(presence)
        claims.flush()
        while True:
            for sock, _event in poller.poll(claims.wait_ms()):
                if sock is inp:
                    _forward(inp, out)
                else:
                    _subscriptions(out, port, report, claims)
            claims.flush()
    _run_proxy(zmq.PULL, [pull], zmq.XPUB, pub, relay, {zmq.XPUB_MANUAL: 1, zmq.MAXMSGSIZE: SUBSCRIPTION_MAX_BYTES,
                                                        zmq.RCVHWM: SUBSCRIPTION_HWM, **KEEPALIVE}, backlog=backlog)


class _Claims:
    """The publisher's presence table and when it was last published."""

    def __init__(self, sink: PresenceSink | None) -> None:
        self.sink = sink
        self.table = PresenceTable()
        self.dirty = sink is not None  # publish the empty table at once: a report left by an earlier run goes
        self.last = 0.0

    def wait_ms(self) -> int | None:
        return int(PRESENCE_FLUSH * 1000) if self.dirty else None

    def take(self, subscribe: bool, topic: bytes, msg: zmq.Frame, port: int) -> bool:
        """Handle a claim (un)subscription; False if its connection must be dropped (forged or malformed)."""
        if self.sink is None:
            return False
        if not subscribe:
            self.dirty |= self.table.release(topic)
            return True
        claim = parse_claim(topic)
        minion_id = self.sink.verify(claim) if claim is not None else None
        if minion_id is None:
            return False
        self.table.hold(topic, minion_id, time.time(), _peer_address(msg, port))
        self.dirty = True
        return True

    def flush(self) -> None:
        now = time.monotonic()
        if self.sink is not None and self.dirty and now - self.last >= PRESENCE_FLUSH:
            self.sink.publish(self.table.snapshot())
            self.dirty, self.last = False, now


def _forward(inp: zmq.Socket, out: zmq.Socket, most: int = 1000) -> None:
    """Publish what the workers pushed (at most `most` messages a turn, so subscriptions get theirs)."""
    for _ in range(most):
        try:
            parts = inp.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return
        if len(parts) == 2 and is_topic(parts[0]):
            out.send_multipart(parts)
        else:
            log.error("dropped a message pushed to the publisher: not [topic, publication]")


def _subscriptions(out: zmq.Socket, port: int, report: Callable[..., None], claims: _Claims,
                   most: int = 1000) -> None:
    """Apply (un)subscriptions to rx topics, take presence claims, for the connection that sent them; drop any
    connection that sends anything else."""
    for _ in range(most):
        try:
            msg = out.recv(zmq.NOBLOCK, copy=False)
        except zmq.Again:
            return
        data = msg.bytes
        kind, topic = data[:1], data[1:]
        if kind in (b"\x00", b"\x01") and is_topic(topic):
            out.setsockopt(zmq.SUBSCRIBE if kind == b"\x01" else zmq.UNSUBSCRIBE, topic)
        elif kind in (b"\x00", b"\x01") and is_claim(topic) and claims.take(kind == b"\x01", topic, msg, port):
            pass
        elif kind != b"\x00":  # unsubscribing from what was never applied needs nothing
            peer = _drop_peer(msg, port)
            if peer:
                report("disconnected %s: it sent a subscription to a topic rx does not use, or a presence claim "
                       "that does not verify", peer)
            else:
                report("ignored a subscription to a topic rx does not use (its connection is gone)")


def _peer_address(msg: zmq.Frame, port: int) -> str:
    """The address of the TCP connection `msg` came in on ("" if it is gone)."""
    return _on_connection(msg, port, lambda conn: str(conn.getpeername()[0]))


def _drop_peer(msg: zmq.Frame, port: int) -> str:
    """Shut down the TCP connection `msg` came in on (libzmq then frees everything it kept for it); its
    address, or "" if it is gone."""
    def drop(conn: socket.socket) -> str:
        host, peer_port = conn.getpeername()[:2]
        conn.shutdown(socket.SHUT_RDWR)
        return f"{host}:{peer_port}"
    return _on_connection(msg, port, drop)


def _on_connection(msg: zmq.Frame, port: int, act: Callable[[socket.socket], str]) -> str:
    """`act` on the TCP connection `msg` came in on; "" if it is gone.  The descriptor comes from the message's
    metadata; it is duplicated and checked to be a TCP connection on our publish port before `act` sees it."""
    try:
        conn = socket.socket(fileno=os.dup(int(msg.get(zmq.SRCFD))))
    except (zmq.ZMQError, OSError, TypeError, ValueError):
        return ""
    with conn:
        try:
            if conn.family in (socket.AF_INET, socket.AF_INET6) and conn.getsockname()[1] == port:
                return act(conn)
        except OSError:
            pass
    return ""


DROPS_REPORT_SECONDS = 1.0
"""At most this often the event relay tells how many events a subscriber missed."""


def event_relay(pull: str, pub: str, dropped: Callable[[int], None] | None = None) -> None:
    """The master's local event bus: what is pushed to `pull` goes out to `pub`'s subscribers.  A subscriber
    whose queue is full (it does not read) misses events, and the others do not wait for it.  Without
    `dropped`, a C-speed `zmq.proxy` to a PUB, which drops silently.  With it, the events some subscriber
    missed are counted: the bus is an XPUB that first offers each event with XPUB_NODROP (refused whole if
    any subscriber it is for is full), then sends it to those with room; `dropped(n)` is told how many, at
    most once every DROPS_REPORT_SECONDS.  That loop is Python: ~6 µs more CPU an event (bench/metrics_cost.py)."""
    if dropped is None:
        _run_proxy(zmq.PULL, [pull], zmq.PUB, pub)
        return

    def relay(inp: zmq.Socket, out: zmq.Socket) -> None:
        poller = zmq.Poller()
        poller.register(inp, zmq.POLLIN)
        poller.register(out, zmq.POLLIN)
        missed, told = 0, time.monotonic()
        while True:
            for sock, _event in poller.poll(int(DROPS_REPORT_SECONDS * 1000) if missed else None):
                if sock is inp:
                    missed += _relay_events(inp, out)
                else:
                    _discard(out)
            if missed and time.monotonic() - told >= DROPS_REPORT_SECONDS:
                dropped(missed)
                missed, told = 0, time.monotonic()
    _run_proxy(zmq.PULL, [pull], zmq.XPUB, pub, relay, {zmq.XPUB_NODROP: 1})


def _relay_events(inp: zmq.Socket, out: zmq.Socket, most: int = 1000) -> int:
    """Pass on what is queued (at most `most` events a turn); how many some subscriber missed."""
    missed = 0
    for _ in range(most):
        try:
            parts = inp.recv_multipart(zmq.NOBLOCK, copy=False)
        except zmq.Again:
            break
        try:
            out.send_multipart(parts, zmq.NOBLOCK, copy=False)
        except zmq.Again:  # a subscriber it is for is full: send it to the others
            missed += batch_count(len(parts), parts[1].bytes if len(parts) == 3 else b"")  # a batch: each event
            out.setsockopt(zmq.XPUB_NODROP, 0)
            out.send_multipart(parts, copy=False)
            out.setsockopt(zmq.XPUB_NODROP, 1)
    return missed


def _discard(out: zmq.Socket, most: int = 1000) -> None:
    """Read the subscription messages an XPUB hands up (it applied them already)."""
    for _ in range(most):
        try:
            out.recv(zmq.NOBLOCK, copy=False)
        except zmq.Again:
            return
