"""Integration fixtures on the shared sandbox harness (tests/support): `sandbox` (a master and
minions in a temporary root_dir, free ports; fails the test if any process is left running),
`fleet` (a running master with minions m1 and m2), and test-only helpers: an EventWatch that
fails the test, RawClient and FakeMinion for hand-made frames."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
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
from rx.transport.handshake import private_publish_key
from rx.transport.topics import subscriptions
from tests.support.postgres import PostgresServer, start_server
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


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """An `async def` test runs in its own event loop; its arguments with an async `aclose` (stores holding a
    server's connection pool) are closed in that loop."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}

    async def main() -> None:
        try:
            await pyfuncitem.obj(**args)
        finally:
            for value in args.values():
                if inspect.iscoroutinefunction(getattr(value, "aclose", None)):
                    await value.aclose()
    asyncio.run(main())
    return True


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the whole session (tests/support/postgres.py); skips with the reason when
    none can be had."""
    server, why = start_server()
    if server is None:
        pytest.skip(f"no PostgreSQL server: {why}")
    try:
        yield server
    finally:
        server.close()


@contextlib.contextmanager
def _sandbox() -> Iterator[Sandbox]:
    root = Path(tempfile.mkdtemp(prefix="rx-it-"))
    box = Sandbox(root)
    try:
        yield box
    finally:
        box.close()
        leftovers = processes_mentioning(str(root))
        for pid in leftovers:
            os.kill(pid, signal.SIGKILL)
        if not os.environ.get("RX_TEST_KEEP"):
            shutil.rmtree(root, ignore_errors=True)
    assert not leftovers, f"processes left running after the test: {leftovers}"


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with _sandbox() as box:
        yield box


@pytest.fixture(scope="module")
def module_sandbox() -> Iterator[Sandbox]:
    """A `sandbox` shared by the tests of one module (for many short tests on the same daemons)."""
    with _sandbox() as box:
        yield box


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


class ListeningFakeMinion(FakeMinion):
    """A FakeMinion (its own accepted key) that also reads every publication, on its own SUB socket in a
    thread, and returns `answer(job)` for each job it opens (None: it does not answer).  `replies` holds
    the master's reply to each return, by jid.  The subscription is proven live before the constructor
    returns (a job to this id gets through)."""

    def __init__(self, box: Sandbox, minion_id: str, answer: Callable[[Any], Any]) -> None:
        import threading
        from rx.client.local import LocalClient
        from rx.transport.crypto import Verifier
        super().__init__(box, minion_id)
        assert self.auth() == "accepted"
        self.answer = answer
        self.verifier = Verifier(self.session.master_pub)
        self.replies: dict[str, dict] = {}
        self.sub_ctx = zmq.Context()
        self.sub = self.sub_ctx.socket(zmq.SUB)
        self.sub.setsockopt(zmq.LINGER, 0)
        for topic in subscriptions(minion_id):
            self.sub.setsockopt(zmq.SUBSCRIBE, topic)
        self.sub.connect(f"tcp://127.0.0.1:{box.pub_port}")
        self.private_key = private_publish_key(self.session.request_key)
        self.stop, self.live = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._listen, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + DEADLINE
        with LocalClient(cfg=box.cfg) as c:
            while not self.live.is_set():
                assert time.monotonic() < deadline, f"{minion_id}'s SUB socket never received a publication"
                c.cmd_async(minion_id, "test.echo", ["warm-up"])
                self.live.wait(1.0)

    def _listen(self) -> None:
        from rx.transport.messages import JobReturn
        from rx.transport.secure import BadJob, OtherRecipient, Rejected, open_publication, parse_publication
        while not self.stop.is_set():
            if not self.sub.poll(50):
                continue
            try:
                pub = parse_publication(self.sub.recv_multipart()[-1], self.verifier, self.id)
                job = open_publication(pub, self.private_key if pub.to else self.session.publish_key,
                                       self.session.serial)
            except (Rejected, OtherRecipient, BadJob):
                continue
            self.live.set()
            ret = self.answer(job)
            if ret is not None:
                load = JobReturn(jid=job.jid, fun=job.fun, fun_args=job.arg, retcode=0, success=True, ret=ret)
                self.replies[job.jid] = self.send_sealed(self.sealed("_return", load.to_wire()))

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        self.sub.close()
        self.sub_ctx.term()
        super().close()
