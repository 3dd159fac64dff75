"""A flood of `_auth` requests on a master's request port, for the attack tests and to measure floods.

Each request is properly shaped and signed by a made-up minion: `new` uses a new id every time (each one
a new key to file, until the master's max_pending_keys), `pool` cycles through a few hundred made-up ids
(fresh nonce, time and signature each time), `stale` sends them with a timestamp outside the auth window.
Requests go out at full speed from several DEALER sockets; replies are read and dropped.  The flood is
bounded: it stops after `--seconds`, or as soon as `--stop-file` exists.

    python -m tests.support.flood tcp://127.0.0.1:4506 --kind new --sockets 4 --seconds 30
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from pathlib import Path
from typing import Iterator

import zmq

from rx.transport.authmsgs import AuthRequest
from rx.transport.codec import encode
from rx.transport.crypto import Identity
from rx.transport.messages import ClearRequest

KINDS = ("new", "pool", "stale")
POOL = 300
STALE_SECONDS = 10 * 86400


def requests(kind: str) -> Iterator[bytes]:
    """Encoded `_auth` request bodies of one kind, for ever."""
    signer = Identity.generate()  # one key signs for every made-up id: each request still verifies
    tag = os.urandom(4).hex()
    names = (f"flood-{tag}-{i}" for i in itertools.count()) if kind == "new" else \
        itertools.cycle([f"flood-{tag}-{i}" for i in range(POOL)])
    for name in names:
        ts = time.time() - (STALE_SECONDS if kind == "stale" else 0)
        req = AuthRequest(id=name, pub=signer.public, eph=os.urandom(32), ts=ts, nonce=os.urandom(16), sig=b"")
        req = AuthRequest(**{**req.__dict__, "sig": signer.sign(req.signed_bytes())})
        yield encode(ClearRequest("_auth", req.to_wire()).to_wire())


def dressed_as_sealed(clear: ClearRequest) -> bytes:
    """A clear request whose first field says `enc: aes` (a later duplicate key says clear): it would jump
    the queue of the master's workers if they did not check what it parses to."""
    return b"\x84\xa3enc\xa3aes" + encode(clear.to_wire())[1:]


def dealers(ctx: zmq.Context, url: str, count: int, *, sndhwm: int, rcvhwm: int = 1000) -> list[zmq.Socket]:
    """`count` DEALER sockets (separate connections) to `url`, closed without lingering."""
    socks = []
    for _ in range(count):
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.SNDHWM, sndhwm)
        s.setsockopt(zmq.RCVHWM, rcvhwm)
        s.connect(url)
        socks.append(s)
    return socks


def flood(url: str, kind: str, sockets: int, seconds: float, stop_file: Path | None = None,
          ready_file: Path | None = None, ready_after: int = 100) -> dict:
    """Send until the deadline or the stop file; returns how many requests went out and how many were answered.
    `ready_file` is created once `ready_after` answers came back (the master is busy with the flood)."""
    ctx = zmq.Context()
    socks = dealers(ctx, url, sockets, sndhwm=1000)
    poller = zmq.Poller()
    for s in socks:
        poller.register(s, zmq.POLLIN | zmq.POLLOUT)
    bodies = requests(kind)
    sent = answered = 0
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline and not (stop_file and stop_file.exists()):
            for s, events in poller.poll(100):
                if events & zmq.POLLIN:
                    while s.poll(0, zmq.POLLIN):
                        s.recv_multipart()
                        answered += 1
                    if ready_file and answered >= ready_after and not ready_file.exists():
                        ready_file.touch()
                if events & zmq.POLLOUT:
                    try:
                        s.send_multipart([sent.to_bytes(8, "big"), b"", next(bodies)], zmq.NOBLOCK)
                        sent += 1
                    except zmq.Again:
                        pass
    finally:
        for s in socks:
            s.close(linger=0)
        ctx.term()
    return {"sent": sent, "answered": answered}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m tests.support.flood", description=__doc__.split("\n\n")[0])
    p.add_argument("url")
    p.add_argument("--kind", choices=KINDS, default="new")
    p.add_argument("--sockets", type=int, default=4)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--stop-file", type=Path, help="stop as soon as this file exists")
    p.add_argument("--ready-file", type=Path, help="create this file once --ready-after answers came back")
    p.add_argument("--ready-after", type=int, default=100)
    a = p.parse_args(argv)
    out = flood(a.url, a.kind, a.sockets, a.seconds, a.stop_file, a.ready_file, a.ready_after)
    print(f"sent {out['sent']} answered {out['answered']}", flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
