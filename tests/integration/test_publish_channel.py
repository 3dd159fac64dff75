"""Attacks on the publish channel and the minion's gate, against real daemons: a master-signed job
with a malformed target (the receive loop must survive it), a captured publication replayed across a
minion restart (it must not run twice), another minion's key holder reading private jobs (it must
not), and subscription floods on the publish port (the publisher's memory must stay bounded)."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import zmq

from rx.client import LocalClient
from rx.transport.crypto import Identity, load_or_create_identity
from rx.transport.ids import new_jid
from rx.transport.messages import Job
from rx.transport.secure import seal_publication
from rx.transport.topics import BROADCAST, subscriptions
from tests.support.procs import wait_for
from tests.support.sandbox import Sandbox, session_keys


def master_identity(box: Sandbox) -> Identity:
    """The running master's own signing key (the attacker here holds it: a master-signed frame)."""
    return load_or_create_identity(Path(box.cfg.pki_dir), "master")


def inject(box: Sandbox, *messages: list[bytes]) -> None:
    """Push [topic, publication] messages into the master's publish relay, as an MWorker does."""
    ctx = zmq.Context()
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 5000)
    push.connect("ipc://" + box.cfg.publish_pull_ipc)
    for parts in messages:
        push.send_multipart(parts)
    push.close()
    ctx.term()


def signed_job(box: Sandbox, **fields: object) -> bytes:
    """A publication sealed under the master's current publish key and signed with the master's key."""
    session = session_keys(box.cfg)
    base = dict(jid=new_jid(), fun="test.ping", arg=[], kwarg={}, tgt="*", tgt_type="glob", ts=time.time())
    return seal_publication(master_identity(box), session.publish_key, session.serial, Job(**{**base, **fields}))


class Tap:
    """A raw SUB socket on the master's publish port: what an on-path attacker sees of the topics it asks for."""

    def __init__(self, box: Sandbox, topics: list[bytes] | tuple[bytes, ...]) -> None:
        self.ctx = zmq.Context()
        self.sub = self.ctx.socket(zmq.SUB)
        self.sub.setsockopt(zmq.LINGER, 0)
        for topic in topics:
            self.sub.setsockopt(zmq.SUBSCRIBE, topic)
        self.sub.connect(f"tcp://127.0.0.1:{box.pub_port}")

    def wait_live(self, box: Sandbox, topic: bytes) -> None:
        """Until a message under `topic` pushed into the relay arrives (the subscription is in place)."""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            inject(box, [topic, b"sync"])
            if self.sub.poll(200):
                self.drain()
                return
        raise AssertionError("the tap never received anything")

    def drain(self, timeout: float = 0.0) -> list[list[bytes]]:
        out = []
        while self.sub.poll(int(timeout * 1000)):
            out.append(self.sub.recv_multipart())
        return out

    def close(self) -> None:
        self.sub.close()
        self.ctx.term()


def ping(box: Sandbox, tgt: str = "m1") -> dict:
    with LocalClient(cfg=box.cfg) as client:
        return client.cmd(tgt, "test.ping", timeout=20)


# ---------------------------------------------------------------- item 17: malformed master-signed jobs

def test_a_master_signed_job_with_an_unhashable_target_does_not_stop_the_minion(sandbox, tmp_path):
    sandbox.start_master()
    sandbox.start_minion("m1")
    marker = tmp_path / "ran"
    bad = [dict(tgt=["m1", {"a": 1}], tgt_type="list"), dict(tgt=[["m1"]], tgt_type="list"),
           dict(tgt="m1", kwarg={1: "x"}), dict(tgt="m1", tgt_type="sql")]
    inject(sandbox, *[[BROADCAST, signed_job(sandbox, fun="cmd.run", arg=[f"echo bad >> {marker}"], **b)]
                      for b in bad])
    minion = sandbox.minions["m1"]
    wait_for(lambda: minion.output().count("whose job is malformed") or not minion.alive() or marker.exists(),
             what="the minion to handle the malformed jobs")
    assert ping(sandbox) == {"m1": True}, minion.output()[-3000:]
    assert minion.alive() and not marker.exists()
    assert "whose job is malformed" in minion.output()


# ---------------------------------------------------------------- item 1: a replay across a minion restart

def _run_and_capture(box: Sandbox, tap: Tap, marker: Path) -> tuple[str, list[list[bytes]]]:
    """Run a job that appends to `marker` on m1; returns its jid and every publish message the tap saw."""
    tap.drain()
    with LocalClient(cfg=box.cfg) as client:
        out = client.cmd("m1", "cmd.run", [f"echo run >> {marker}"], timeout=20, full_return=True)
    assert out["m1"]["retcode"] == 0
    return out["m1"]["jid"], tap.drain(0.5)


def test_a_captured_publication_replayed_after_a_minion_restart_does_not_run_again(sandbox, tmp_path):
    """The gate accepts jobs a little older than the minion's first session (clock slack), so a frame
    captured just before a restart and re-sent just after it would be fresh: the jids run are kept on
    disk.  A restart slower than that slack makes the job stale instead (no test of the file): then
    the round is tried again, with a new job."""
    sandbox.start_master()
    sandbox.start_minion("m1")
    tap = Tap(sandbox, subscriptions("m1"))
    try:
        tap.wait_live(sandbox, BROADCAST)
        for _round in range(3):
            marker = tmp_path / f"runs-{_round}"
            jid, captured = _run_and_capture(sandbox, tap, marker)
            assert captured, "the tap saw no publication"
            sandbox.minions["m1"].stop(signal.SIGKILL)
            seen = len(sandbox.minions["m1"].output())
            sandbox.start_minion("m1")
            inject(sandbox, *captured)
            minion = sandbox.minions["m1"]
            refusal = re.compile(rf"refused (a replayed|stale) job {jid}")
            verdict = wait_for(lambda: refusal.search(minion.output()[seen:]) or marker.read_text().count("run") > 1,
                               what="the restarted minion to handle the replayed job")
            assert marker.read_text() == "run\n", "the replayed job ran a second time"
            if verdict.group(1) == "a replayed":
                break
        else:
            raise AssertionError("the minion restarted too slowly, 3 times, for the replay to be fresh")
        assert ping(sandbox) == {"m1": True}
        assert marker.read_text() == "run\n"
    finally:
        tap.close()
