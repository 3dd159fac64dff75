"""Integration fixtures on the shared sandbox harness (tests/support): `sandbox` (a master and
minions in a temporary root_dir, free ports; fails the test if any process is left running),
`fleet` (a running master with minions m1 and m2), and test-only helpers: an EventWatch that
fails the test, RawClient and FakeMinion for hand-made frames."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import zmq

from rx.client import events as rx_events
from rx.transport.codec import decode, encode
from tests.support.procs import DEADLINE, processes_mentioning
from tests.support.sandbox import Sandbox, file_accepted_key


class EventWatch(rx_events.EventWatch):
    """rx's EventWatch, failing the test when an expected event does not come."""

    def next(self, timeout: float = DEADLINE, match: Callable[[str], bool] = lambda t: True) -> tuple[str, dict]:
        event = super().next(timeout, match)
        if event is None:
            raise AssertionError("timed out waiting for an event")
        return event

    def drain(self, timeout: float = 0.3) -> list[tuple[str, dict]]:
        return super().drain(timeout)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    root = Path(tempfile.mkdtemp(prefix="rx-it-"))
    box = Sandbox(root)
    try:
        yield box
    finally:
        box.close()
        leftovers = processes_mentioning(str(root))
        for pid in leftovers:
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(root, ignore_errors=True)
    assert not leftovers, f"processes left running after the test: {leftovers}"


@pytest.fixture
def fleet(sandbox: Sandbox) -> Sandbox:
    """A running master and two accepted, running minions m1 and m2."""
    sandbox.start_master()
    sandbox.start_minion("m1")
    sandbox.start_minion("m2")
    return sandbox


class RawClient:
    """A bare DEALER to the master's request port, for sending hand-made frames."""

    def __init__(self, url: str) -> None:
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(url)
        self._n = 0

    def send_frames(self, frames: list[bytes]) -> None:
        self.sock.send_multipart(frames)

    def request(self, obj: Any, timeout: float = 10.0, raw: bytes | None = None) -> Any:
        """Send one request body (an object to encode, or raw bytes) and return the decoded reply."""
        self._n += 1
        rid = self._n.to_bytes(4, "big")
        self.sock.send_multipart([rid, b"", raw if raw is not None else encode(obj)])
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if self.sock.poll(int(left * 1000)):
                frames = self.sock.recv_multipart()
                if frames[0] == rid:
                    return decode(frames[-1])
        raise AssertionError("no reply from the master")

    def close(self) -> None:
        self.sock.close()
        self.ctx.term()


class FakeMinion:
    """Speaks the minion protocol by hand (sans-IO layer + RawClient), so a test
    can send exactly the sealed messages it wants, including bad ones."""

    def __init__(self, box: Sandbox, minion_id: str, accept: bool = True) -> None:
        from rx.transport.crypto import Identity
        self.id = minion_id
        self.identity = Identity.generate()
        self.box = box
        if accept:
            file_accepted_key(box.cfg, minion_id, self.identity.public)
        self.raw = RawClient(f"tcp://127.0.0.1:{box.ret_port}")
        self.session = None
        self._sent: dict = {}

    def auth(self) -> str:
        from rx.transport.handshake import finish_auth, start_auth
        from rx.transport.messages import ClearRequest
        pending = start_auth(self.identity, self.id)
        reply = self.raw.request(ClearRequest("_auth", pending.request.to_wire()).to_wire())
        if reply.get("ok") is False:
            raise RuntimeError(f"auth refused: {reply['error']['message']}")
        outcome = finish_auth(pending, reply, None)
        self.session = outcome.session
        return outcome.status

    def sealed(self, cmd: str, load: dict, claim_id: str | None = None) -> bytes:
        from rx.transport.secure import seal_request
        assert self.session is not None
        req = seal_request(self.session.request_key, claim_id or self.id, self.session.serial, cmd, load)
        self._sent[req.nonce] = req
        return encode(req.to_wire())

    def sealed_plaintext(self, plain: bytes) -> bytes:
        """A request frame sealed correctly around any plaintext bytes (not only a well-formed command)."""
        from rx.transport.crypto import Aead
        from rx.transport.messages import AesRequest, request_aad
        assert self.session is not None
        nonce, ct = Aead(self.session.request_key).seal(plain, request_aad(self.id, self.session.serial))
        req = AesRequest(id=self.id, serial=self.session.serial, nonce=nonce, ct=ct)
        self._sent[req.nonce] = req
        return encode(req.to_wire())

    def send_sealed(self, frame: bytes) -> dict:
        """Send a sealed frame; returns the master's inner reply (opened) or its clear error."""
        from rx.transport.messages import parse_request
        from rx.transport.secure import open_reply
        reply = self.raw.request(None, raw=frame)
        if reply.get("enc") == "aes":
            req = parse_request(decode(frame))
            return open_reply(self.session.request_key, self._sent.get(req.nonce, req), reply)
        return reply

    def close(self) -> None:
        self.raw.close()
