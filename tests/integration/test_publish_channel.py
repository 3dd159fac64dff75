"""Attacks on the publish channel and the minion's gate, against real daemons: a master-signed job
with a malformed target (the receive loop must survive it), a captured publication replayed across a
minion restart (it must not run twice), another minion's key holder reading private jobs (it must
not), and subscription floods on the publish port (the publisher's memory must stay bounded)."""

from __future__ import annotations

import time
from pathlib import Path

import zmq

from rx.client import LocalClient
from rx.transport.crypto import Identity, load_or_create_identity
from rx.transport.ids import new_jid
from rx.transport.messages import Job
from rx.transport.secure import seal_publication
from tests.support.procs import wait_for
from tests.support.sandbox import Sandbox, session_keys


def master_identity(box: Sandbox) -> Identity:
    """The running master's own signing key (the attacker here holds it: a master-signed frame)."""
    return load_or_create_identity(Path(box.cfg.pki_dir), "master")


def inject(box: Sandbox, *messages: list[bytes]) -> None:
    """Push messages into the master's publish relay, as an MWorker does: every subscriber receives them."""
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
    inject(sandbox, *[[signed_job(sandbox, fun="cmd.run", arg=[f"echo bad >> {marker}"], **b)] for b in bad])
    minion = sandbox.minions["m1"]
    wait_for(lambda: minion.output().count("whose job is malformed") or not minion.alive() or marker.exists(),
             what="the minion to handle the malformed jobs")
    assert ping(sandbox) == {"m1": True}, minion.output()[-3000:]
    assert minion.alive() and not marker.exists()
    assert "whose job is malformed" in minion.output()
