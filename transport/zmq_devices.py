"""The master's zmq relays (C-speed `zmq.proxy`), each blocking until its context ends:
the request router (ROUTER -> DEALER to the workers), the publish fan-out (PULL -> PUB) and
the event relay (PULL -> PUB on IPC).  IPC endpoints are made 0600 (the sock_dir is 0700)."""

from __future__ import annotations

import os
from typing import Sequence

import zmq

from rx.transport.codec import MAX_FRAME_BYTES

RELAY_HWM = 100_000


def _run_proxy(front_type: int, front_binds: Sequence[str], back_type: int, back_bind: str) -> None:
    ctx = zmq.Context()
    front = ctx.socket(front_type)
    back = ctx.socket(back_type)
    for s in (front, back):
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.SNDHWM, RELAY_HWM)
        s.setsockopt(zmq.RCVHWM, RELAY_HWM)
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
    """Requests from `front` (bound) fair-queued to the workers connected at `back`."""
    _run_proxy(zmq.ROUTER, front, zmq.DEALER, back)


def publish_fanout(pull: str, pub: str) -> None:
    """Frames pushed to `pull` go out to every subscriber of `pub`."""
    _run_proxy(zmq.PULL, [pull], zmq.PUB, pub)


def event_relay(pull: str, pub: str) -> None:
    """The master's local event bus."""
    _run_proxy(zmq.PULL, [pull], zmq.PUB, pub)
