"""The master's zmq relays (C-speed `zmq.proxy`), each blocking until its context ends:
the request router (ROUTER -> DEALER to the workers), the publish fan-out (PULL -> PUB) and
the event relay (PULL -> PUB on IPC).  IPC endpoints are made 0600 (the sock_dir is 0700)."""

from __future__ import annotations

import os
from typing import Sequence

import zmq

from rx.transport.codec import MAX_FRAME_BYTES

RELAY_HWM = 100_000
"""Messages queued in the publish fan-out and the event relay (local, trusted senders)."""
PEER_HWM = 2
"""Requests the request router queues per connected peer: when they wait, it stops reading that peer's
connection (TCP backpressure, nothing dropped), so one connection holds at most (PEER_HWM + 1) frames
in the router, however fast it sends."""
WORKER_HWM = 2
"""Requests the request router queues per worker (each worker reads them into its own bounded lanes)."""
REPLY_HWM = 1000
"""Replies queued per peer; a peer that does not read its replies loses those beyond it."""


def _run_proxy(front_type: int, front_binds: Sequence[str], back_type: int, back_bind: str, *,
               peer_hwm: int = RELAY_HWM, worker_hwm: int = RELAY_HWM, reply_hwm: int = RELAY_HWM) -> None:
    ctx = zmq.Context()
    front = ctx.socket(front_type)
    back = ctx.socket(back_type)
    for s in (front, back):
        s.setsockopt(zmq.LINGER, 0)
    front.setsockopt(zmq.RCVHWM, peer_hwm)
    front.setsockopt(zmq.SNDHWM, reply_hwm)
    back.setsockopt(zmq.SNDHWM, worker_hwm)
    back.setsockopt(zmq.RCVHWM, reply_hwm)
    front.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME_BYTES)
    for url in front_binds:
        front.bind(url)
    back.bind(back_bind)
    for url in [*front_binds, back_bind]:
        if url.startswith("ipc://"):
            os.chmod(url[len("ipc://"):], 0o600)
    try:
        zmq.proxy(front, back)
    except zmq.ContextTerminated:
        pass
    finally:
        front.close(linger=0)
        back.close(linger=0)
        ctx.term()


def request_router(front: Sequence[str], back: str) -> None:
    """Requests from `front` (bound) fair-queued to the workers connected at `back`, with small queues
    (PEER_HWM, WORKER_HWM): the backlog is bounded in frames per connection, not only in messages."""
    _run_proxy(zmq.ROUTER, front, zmq.DEALER, back, peer_hwm=PEER_HWM, worker_hwm=WORKER_HWM, reply_hwm=REPLY_HWM)


def publish_fanout(pull: str, pub: str) -> None:
    """Frames pushed to `pull` go out to every subscriber of `pub`."""
    _run_proxy(zmq.PULL, [pull], zmq.PUB, pub)


def event_relay(pull: str, pub: str) -> None:
    """The master's local event bus."""
    _run_proxy(zmq.PULL, [pull], zmq.PUB, pub)
