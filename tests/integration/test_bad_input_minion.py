"""Garbage, forgeries and replays on the minion's publish path (a fake publisher
between the master and the minion): dropped with a log line, never executed."""

from __future__ import annotations

import asyncio
import os
import time

import pytest
import zmq

from conftest import EventWatch
from rx.client import LocalClient
from rx.client.local import AsyncLocalClient
from tests.support.sandbox import session_keys
from tests.support.lc_contract import merged
from rx.transport.codec import encode
from rx.transport.crypto import Identity
from rx.transport.messages import Job
from rx.transport.secure import seal_publication
from rx.transport.topics import BROADCAST, subscriptions
from tests.support.procs import free_port


class Relay:
    """Sits between the master's PUB and a minion: forwards what the test lets through."""

    def __init__(self, box) -> None:
        self.box = box
        self.ctx = zmq.Context()
        self.port = free_port()
        self.out = self.ctx.socket(zmq.XPUB)
        self.out.setsockopt(zmq.LINGER, 0)
        self.out.bind(f"tcp://127.0.0.1:{self.port}")
        self.inp = self.ctx.socket(zmq.SUB)
        self.inp.setsockopt(zmq.LINGER, 0)
        for topic in subscriptions("m1"):
            self.inp.setsockopt(zmq.SUBSCRIBE, topic)
        self.inp.connect(f"tcp://127.0.0.1:{box.pub_port}")

    def wait_subscriber(self) -> None:
        assert self.out.poll(20_000), "the minion never subscribed to the fake publisher"
        assert self.out.recv()[0] == 1
        while self.out.poll(200):  # its second topic
            self.out.recv()

    def publish(self, tgt: str, fun: str, arg: list) -> str:
        async def go() -> str:
            async with AsyncLocalClient(cfg=self.box.cfg) as c:
                return (await c.publish(tgt, fun, arg)).jid
        return asyncio.run(go())

    def capture(self, tgt: str, fun: str, arg: list) -> tuple[str, list[bytes]]:
        """Publish through the real master until our SUB sees the message (slow-joiner safe)."""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            jid = self.publish(tgt, fun, arg)
            if self.inp.poll(500):
                return jid, self.inp.recv_multipart()
        raise AssertionError("never captured a publication")

    def send(self, frame: bytes | list[bytes]) -> None:
        """Forward a captured message, or send a frame under the broadcast topic."""
        self.out.send_multipart(frame if isinstance(frame, list) else [BROADCAST, frame])

    def close(self) -> None:
        self.out.close()
        self.inp.close()
        self.ctx.term()


@pytest.fixture
def relayed(sandbox):
    sandbox.start_master()
    relay = Relay(sandbox)
    sandbox.start_minion("m1", publish_port=relay.port)
    relay.wait_subscriber()
    # drain the publications captured while syncing
    yield sandbox, relay
    relay.close()


def _run_through(box, relay, fun: str, arg: list) -> dict:
    """Capture a real job, forward it, wait for m1's return; returns the return event data."""
    watch = EventWatch(box.cfg, "rx/job/")
    try:
        while relay.inp.poll(0):
            relay.inp.recv_multipart()
        jid, frame = relay.capture("m1", fun, arg)
        relay.send(frame)
        _tag, data = watch.next(match=lambda t: t == f"rx/job/{jid}/ret/m1")
        return {"jid": jid, "frame": frame, **data}
    finally:
        watch.close()


def test_garbage_on_the_publish_path_is_dropped(relayed, tmp_path):
    box, relay = relayed
    marker = tmp_path / "ran"
    frames = [os.urandom(100), b"", encode({"serial": 1}), encode([1, 2]), b"\x91" * 300,
              encode({"serial": 1, "nonce": b"\0" * 12, "ct": b"x" * 40, "sig": b"\0" * 64}),
              encode({"serial": 2**63, "nonce": b"\0" * 12, "ct": b"x", "sig": os.urandom(64)})]
    for f in frames:
        relay.send(f)
    ret = _run_through(box, relay, "cmd.run", [f"echo ok >> {marker}"])
    assert ret["retcode"] == 0
    assert marker.read_text() == "ok\n"
    assert box.minions["m1"].alive()
    assert "dropped a publication" in box.minions["m1"].output()


def test_forged_publication_with_the_publish_key_but_not_the_masters_signature(relayed, tmp_path):
    box, relay = relayed
    marker = tmp_path / "forged"
    session = session_keys(box.cfg)
    job = Job(jid="20990101000000000001", fun="cmd.run", arg=[f"touch {marker}"], kwarg={}, tgt="*",
              tgt_type="glob", ts=time.time())
    relay.send(seal_publication(Identity.generate(), session.publish_key, session.serial, job))
    _run_through(box, relay, "test.ping", [])  # a later real job goes through: the forgery was handled first
    assert not marker.exists()
    assert "does not verify" in box.minions["m1"].output()


def test_replayed_publication_runs_once(relayed, tmp_path):
    box, relay = relayed
    marker = tmp_path / "count"
    first = _run_through(box, relay, "cmd.run", [f"echo x >> {marker}"])
    for _ in range(3):
        relay.send(first["frame"])
    _run_through(box, relay, "test.ping", [])
    assert marker.read_text() == "x\n"
    assert "replayed job" in box.minions["m1"].output()


def test_jobs_published_while_the_publish_link_is_down_run_on_reconnect(relayed, tmp_path):
    """The minion's SUB link drops; a job published meanwhile never reaches it on the wire. When the link
    comes back the minion asks the master for what it missed, runs it once and returns."""
    box, relay = relayed
    marker = tmp_path / "caught-up"
    _run_through(box, relay, "test.ping", [])
    relay.out.close(linger=0)  # the link goes down
    with LocalClient(cfg=box.cfg) as c:
        pub = c.run_job("m1", "cmd.run", [f"echo once >> {marker}"])
        assert pub["minions"] == ["m1"]
        relay.out = relay.ctx.socket(zmq.XPUB)
        relay.out.setsockopt(zmq.LINGER, 0)
        relay.out.bind(f"tcp://127.0.0.1:{relay.port}")  # the link comes back
        assert merged(c.get_cli_returns(pub["jid"], pub["minions"], timeout=20)) == {"m1": ""}
    assert marker.read_text() == "once\n"
    assert "was published while the connection was down" in box.minions["m1"].output()
