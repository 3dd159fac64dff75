"""Attacks on the publish channel and the minion's gate, against real daemons: a master-signed job
with a malformed target (the receive loop must survive it), a captured publication replayed across a
minion restart (it must not run twice), another minion's key holder reading private jobs (it must
not), and subscription floods on the publish port (the publisher's memory must stay bounded)."""

from __future__ import annotations

import concurrent.futures
import json
import os
import random
import re
import signal
import socket
import time
from pathlib import Path

import zmq

from conftest import FakeMinion
from rx.client import LocalClient
from rx.transport.codec import decode
from rx.transport.crypto import Identity, load_or_create_identity
from rx.transport.handshake import private_publish_key, request_key
from rx.transport.ids import new_jid
from rx.transport.messages import Job, MissedRequest, Publication
from rx.transport.secure import BadJob, Rejected, StaleSerial, open_publication, seal_publication
from rx.transport.topics import BROADCAST, all_topics, bucket, subscriptions
from tests.support.procs import free_port, wait_for
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
        self.sub.setsockopt(zmq.SNDHWM, 0)  # a SUB drops subscriptions past its send high-water mark
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


# ---------------------------------------------------------------- item 8: private publications

def _keys_of(box: Sandbox, minion_id: str) -> list[bytes]:
    """Every key `minion_id` holds in the current session: the shared publish key, its request key and
    its private publish key (what a thief of that minion's memory has)."""
    session = session_keys(box.cfg)
    req = request_key(session.secret, session.serial, minion_id)
    return [session.publish_key, req, private_publish_key(req)]


def _readable(messages: list[list[bytes]], keys: list[bytes], serial: int) -> list[Job]:
    """The jobs in captured [topic, publication] messages that any of `keys` opens."""
    jobs = []
    for _topic, body in messages:
        pub = Publication.from_wire(decode(body))
        for key in keys:
            try:
                jobs.append(open_publication(pub, key, serial))
            except (Rejected, StaleSerial, BadJob):
                continue
    return jobs


def _cli_job(box: Sandbox, *args: str) -> dict:
    r = box.run_cli("rx", *args, "--out", "json", "-t", "20")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_a_small_job_is_sealed_for_its_minion_alone(sandbox):
    """m2's keys (and the shared publish key) open no frame of a job to m1, which runs it; the bytes of
    its argument appear nowhere on the wire."""
    sandbox.start_master()
    sandbox.start_minion("m1")
    sandbox.start_minion("m2")
    tap = Tap(sandbox, all_topics())
    try:
        tap.wait_live(sandbox, BROADCAST)
        secret = f"s3cret-{os.urandom(6).hex()}"
        assert _cli_job(sandbox, "m1", "cmd.run", f"echo {secret}") == {"m1": secret}
        frames = tap.drain(0.5)
    finally:
        tap.close()
    assert [topic for topic, _body in frames] == [bucket("m1")]
    assert not any(secret.encode() in body for _topic, body in frames)
    serial = session_keys(sandbox.cfg).serial
    assert _readable(frames, _keys_of(sandbox, "m2"), serial) == []
    assert [j.arg for j in _readable(frames, _keys_of(sandbox, "m1"), serial)] == [[f"echo {secret}"]]


def test_private_jobs_reach_a_reconnecting_minion_through_catch_up_and_only_it(sandbox):
    """A private job's recipient that missed the frame finds it by `_missed`; another minion does not."""
    sandbox.start_master()
    late, other = FakeMinion(sandbox, "late"), FakeMinion(sandbox, "other")
    try:
        assert late.auth() == "accepted" and other.auth() == "accepted"
        since = time.time() - 1
        with LocalClient(cfg=sandbox.cfg) as client:
            pub = client.run_job("late", "cmd.run", ["echo for-late-only"])
        assert pub["minions"] == ["late"]
        asked = MissedRequest(since).to_wire()
        assert [j["jid"] for j in late.send_sealed(late.sealed("_missed", asked))["jobs"]] == [pub["jid"]]
        assert other.send_sealed(other.sealed("_missed", asked))["jobs"] == []
    finally:
        late.close()
        other.close()


def test_private_forces_per_minion_sealing_for_any_target(sandbox):
    """With private publications off (private_publish_max: 0) a job is readable with any minion's publish
    key, which shows the capture works; `rx --private` (and the client's private=True) seal it per minion:
    m2 reads only its own frame."""
    sandbox.start_master(private_publish_max=0)
    sandbox.start_minion("m1")
    sandbox.start_minion("m2")
    tap = Tap(sandbox, all_topics())
    try:
        tap.wait_live(sandbox, BROADCAST)
        assert _cli_job(sandbox, "*", "cmd.run", "echo shared") == {"m1": "shared", "m2": "shared"}
        shared = tap.drain(0.5)
        assert _cli_job(sandbox, "--private", "*", "cmd.run", "echo apart") == {"m1": "apart", "m2": "apart"}
        apart = tap.drain(0.5)
        with LocalClient(cfg=sandbox.cfg) as client:
            assert client.cmd("*", "test.echo", ["api"], timeout=20, private=True) == {"m1": "api", "m2": "api"}
        api = tap.drain(0.5)
    finally:
        tap.close()
    assert sorted(topic for topic, _body in api) == sorted([bucket("m1"), bucket("m2")])
    serial = session_keys(sandbox.cfg).serial
    assert [j.arg for j in _readable(shared, _keys_of(sandbox, "m2"), serial)] == [["echo shared"]]
    assert sorted(topic for topic, _body in apart) == sorted([bucket("m1"), bucket("m2")])
    m2_keys = _keys_of(sandbox, "m2")
    opened = [Publication.from_wire(decode(body)).to for topic, body in apart
              if _readable([[topic, body]], m2_keys, serial)]
    assert opened == ["m2"], "m2 opens its own frame, and only that one"


# ---------------------------------------------------------------- item 11: subscription floods

def _listening_pid(pids: list[int], port: int) -> int:
    """The process among `pids` that holds the TCP socket listening on `port`."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                cols = line.split()
                if int(cols[1].rsplit(":", 1)[1], 16) == port and cols[3] == "0A":
                    inodes.add(f"socket:[{cols[9]}]")
    for pid in pids:
        try:
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") in inodes for fd in os.listdir(f"/proc/{pid}/fd")):
                return pid
        except OSError:
            continue
    raise AssertionError(f"no process of {pids} listens on port {port}")


def _memory_mb(pid: int) -> tuple[float, float]:
    """(resident now, peak resident) of `pid`, in MB."""
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


FLOODERS = 30
RANDOM_SUBSCRIPTIONS = 5000
BOUND_MB = 64


def _zmtp_send(port: int, bodies: list[bytes]) -> None:
    """Speak ZMTP 3.0 as a SUB over a plain TCP socket and send `bodies` as messages (a libzmq client
    would keep a 1 MB subscription in a trie of its own, a million nodes deep)."""
    ready = b"\x05READY\x0bSocket-Type" + (3).to_bytes(4, "big") + b"SUB"
    wire = [b"\xff" + b"\0" * 8 + b"\x7f\x03\x00" + b"NULL".ljust(20, b"\0") + b"\0" * 32,
            b"\x04" + bytes([len(ready)]) + ready]
    wire += [(b"\x00" + bytes([len(b)]) if len(b) < 256 else b"\x02" + len(b).to_bytes(8, "big")) + b for b in bodies]
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(b"".join(wire))
            conn.recv(64)
    except OSError:
        pass  # the publisher cut us off: what it should do


def test_subscription_floods_do_not_grow_the_publisher_and_minions_still_get_jobs(sandbox):
    """30 connections each send a 1 MB subscription (three times over), 30 more each send thousands of
    random ones (half of them within the publisher's message size limit) and a message that is no
    subscription at all, and send them all again on every reconnect; 10 subscribe to every rx topic.
    The publisher's peak memory stays within BOUND_MB of where it started, and jobs still reach the
    minion."""
    sandbox.start_master()
    sandbox.start_minion("m1")
    assert ping(sandbox) == {"m1": True}
    publisher = _listening_pid(sandbox.master_pids(), sandbox.pub_port)
    before, _ = _memory_mb(publisher)
    ctx = zmq.Context()
    url = f"tcp://127.0.0.1:{sandbox.pub_port}"
    socks = []
    try:
        rng = random.Random(8)
        big = [b"\x01" + rng.randbytes(1 << 20)]
        with concurrent.futures.ThreadPoolExecutor(FLOODERS) as pool:
            list(pool.map(lambda _: _zmtp_send(sandbox.pub_port, big), range(3 * FLOODERS)))
        for n in range(FLOODERS):
            raw = ctx.socket(zmq.XSUB)
            raw.setsockopt(zmq.SNDHWM, 0)
            raw.connect(url)
            raw.send(b"\x02not a subscription")
            longest = 62 if n % 2 else 200  # within the publisher's size limit, or past it
            for _ in range(RANDOM_SUBSCRIPTIONS):
                raw.send(b"\x01" + rng.randbytes(rng.randint(1, longest)))
            socks.append(raw)
        for _ in range(10):
            every = ctx.socket(zmq.SUB)
            every.setsockopt(zmq.SNDHWM, 0)
            for topic in all_topics():
                every.setsockopt(zmq.SUBSCRIBE, topic)
            every.connect(url)
            socks.append(every)
        deadline = time.monotonic() + 5  # the XSUBs reconnect and send it all again meanwhile
        while time.monotonic() < deadline:
            assert ping(sandbox) == {"m1": True}
        _rss, peak = _memory_mb(publisher)
        assert peak - before < BOUND_MB, f"publisher grew from {before:.0f} MB to a peak of {peak:.0f} MB"
    finally:
        for sock in socks:
            sock.close(linger=0)
        ctx.term()
    assert ping(sandbox) == {"m1": True}
    assert _listening_pid(sandbox.master_pids(), sandbox.pub_port) == publisher, "the publisher died and restarted"
    assert "it sent a subscription to a topic rx does not use" in sandbox.master.output()
