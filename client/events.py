"""Watch the master's event bus from synchronous code (scripts, tests, the benchmarks).

The subscription is proven live before the constructor returns (a round trip of
an `rx/sync/<token>` event), so nothing fired afterwards is missed.  Runs on the
master host as the master's user: the bus is IPC in the 0700 sock_dir.
"""

from __future__ import annotations

import secrets
import time
from typing import Callable

import zmq

from rx.config import MasterConfig
from rx.transport.codec import DecodeError, decode, encode

SYNC_PREFIX = b"rx/sync/"


class EventWatch:
    """Events whose tag starts with `prefix`, as (tag, data) pairs."""

    def __init__(self, cfg: MasterConfig, prefix: str = "", *, sync_timeout: float = 20.0) -> None:
        self.ctx = zmq.Context()
        self.sub = self.ctx.socket(zmq.SUB)
        self.sub.setsockopt(zmq.LINGER, 0)
        self.sub.setsockopt(zmq.RCVHWM, 1_000_000)
        self.sub.setsockopt(zmq.SUBSCRIBE, prefix.encode())
        token = SYNC_PREFIX + secrets.token_hex(6).encode()
        self.sub.setsockopt(zmq.SUBSCRIBE, token)
        self.sub.connect(f"ipc://{cfg.event_pub_ipc}")
        push = self.ctx.socket(zmq.PUSH)
        push.setsockopt(zmq.LINGER, 0)
        push.connect(f"ipc://{cfg.event_pull_ipc}")
        deadline = time.monotonic() + sync_timeout
        wait_ms = 1
        try:
            while time.monotonic() < deadline:
                push.send_multipart([token, encode({})])
                if self.sub.poll(wait_ms) and self.sub.recv_multipart()[0] == token:
                    self.sub.setsockopt(zmq.UNSUBSCRIBE, token)
                    return
                wait_ms = min(wait_ms * 2, 50)
            self.close()
            raise TimeoutError(f"the master's event bus at {cfg.event_pub_ipc} did not answer")
        finally:
            push.close()

    def __enter__(self) -> "EventWatch":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def next(self, timeout: float, match: Callable[[str], bool] = lambda tag: True) -> tuple[str, dict] | None:
        """The next event whose tag `match`es within `timeout` seconds, or None."""
        return self._next(timeout, match)

    def _next(self, timeout: float, match: Callable[[str], bool] = lambda tag: True) -> tuple[str, dict] | None:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if not self.sub.poll(max(1, int(left * 1000))):
                return None
            frames = self.sub.recv_multipart()
            if len(frames) != 2 or frames[0].startswith(SYNC_PREFIX):
                continue
            try:
                tag, data = frames[0].decode(), decode(frames[1])
            except (UnicodeDecodeError, DecodeError):
                continue
            if isinstance(data, dict) and match(tag):
                return tag, data
        return None

    def drain(self, timeout: float) -> list[tuple[str, dict]]:
        """Everything that arrives within `timeout` seconds (to check that something did NOT happen)."""
        out = []
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            event = self._next(left)
            if event is not None:
                out.append(event)
        return out

    def close(self) -> None:
        if not self.sub.closed:
            self.sub.close()
            self.ctx.term()
