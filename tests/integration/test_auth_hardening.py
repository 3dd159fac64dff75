"""Issue #8, the auth side: each attack performed for real against running daemons, and the system
answering afterwards.  Replayed `_auth` (item 2), a stale sealed reply swapped in by a relay
(item 3), a low-order ephemeral key (item 7), a flood of made-up ids (item 10), two keys for one
new id at once (item 13), master_finger against a pinned impostor (item 14)."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest
import zmq

from conftest import EventWatch, RawClient
from rx.client.local import LocalClient
from rx.transport.codec import decode, encode
from rx.transport.crypto import Identity, load_or_create_identity
from rx.transport.handshake import PendingAuth, finish_auth, start_auth
from rx.transport.authmsgs import AuthRequest
from rx.transport.messages import AesRequest, ClearRequest, parse_request
from rx.transport.secure import open_request, seal_request
from rx.transport.tags import AUTH
from tests.support.procs import free_port, wait_for
from tests.support.sandbox import Layout, Sandbox, master_public_key, session_keys

FLOOD_MAX_PENDING = int(os.environ.get("RX_TEST_MAX_PENDING", "200"))
"""max_pending_keys for the flood test; the flood is five times as many made-up ids (the issue's
case is RX_TEST_MAX_PENDING=1000: 5,000 ids)."""


def _keys(box: Sandbox) -> dict:
    r = box.run_cli("rx-key", "-L", "--out", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _minion_identity(box: Sandbox, minion_id: str) -> Identity:
    """The real minion's key pair, as an attacker holding a copy of it (or a test) would load it."""
    return load_or_create_identity(box.minion_dir(minion_id) / "root" / "etc" / "rx" / "pki" / "minion", "minion")


def _auth_frame(pending: PendingAuth) -> bytes:
    return encode(ClearRequest("_auth", pending.request.to_wire()).to_wire())


# ---------------------------------------------------------------- item 2: a captured _auth is answered once

def test_replayed_auth_request_is_refused_and_fires_no_event(fleet):
    """A captured `_auth` of the real minion m1, sent again within the timestamp window: the first copy gets
    a signed reply and an rx/auth event, the second an AUTH error and nothing else."""
    pending = start_auth(_minion_identity(fleet, "m1"), "m1")
    frame = _auth_frame(pending)
    raw = RawClient(f"tcp://127.0.0.1:{fleet.ret_port}")
    watch = EventWatch(fleet.cfg, AUTH)
    try:
        first = raw.request(None, raw=frame)
        assert finish_auth(pending, first, master_public_key(fleet.cfg)).status == "accepted"
        assert watch.next()[1]["id"] == "m1"
        again = raw.request(None, raw=frame)
        assert again["ok"] is False and again["error"]["type"] == "auth"
        assert "already answered" in again["error"]["message"]
        assert watch.drain(0.5) == [], "a replayed _auth must fire no event"
        fresh = start_auth(_minion_identity(fleet, "m1"), "m1")
        assert finish_auth(fresh, raw.request(None, raw=_auth_frame(fresh)), master_public_key(fleet.cfg)).session
    finally:
        watch.close()
        raw.close()
    with LocalClient(cfg=fleet.cfg) as c:
        assert c.cmd("*", "test.ping") == {"m1": True, "m2": True}
    assert "replayed auth request" in fleet.master.output()


# ---------------------------------------------------------------- item 3: a stale sealed reply is not trusted

class Relay:
    """An on-path relay for one minion: a ROUTER the minion connects to (as its master_port), a DEALER to the
    master.  It keeps the first sealed reply it sees and answers the minion's first `_return` with it instead
    of forwarding it.  (It tells a `_return` apart by opening requests with the session secret: test-only
    knowledge; a real attacker would go by size and timing.)"""

    def __init__(self, box: Sandbox) -> None:
        self.box = box
        self.port = free_port()
        self.captured: bytes | None = None
        self.swapped = 0
        self.returns_forwarded = 0
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._ready.wait(10)

    def _command(self, body: bytes) -> str | None:
        try:
            req = parse_request(decode(body))
        except Exception:
            return None
        if not isinstance(req, AesRequest):
            return None
        session = session_keys(self.box.cfg)
        return open_request(session.secret, session.serial, req, time.time(), 300.0)[1].cmd

    def _run(self) -> None:
        ctx = zmq.Context()
        front, back = ctx.socket(zmq.ROUTER), ctx.socket(zmq.DEALER)
        for s in (front, back):
            s.setsockopt(zmq.LINGER, 0)
        front.bind(f"tcp://127.0.0.1:{self.port}")
        back.connect(f"tcp://127.0.0.1:{self.box.ret_port}")
        poller = zmq.Poller()
        poller.register(front, zmq.POLLIN)
        poller.register(back, zmq.POLLIN)
        peers: dict[bytes, tuple[bytes, str | None]] = {}
        self._ready.set()
        try:
            while not self._stop.is_set():
                for sock, _ in poller.poll(50):
                    if sock is front:
                        ident, rid, empty, body = front.recv_multipart()
                        cmd = self._command(body)
                        if cmd == "_return" and self.captured is not None and not self.swapped:
                            self.swapped += 1
                            front.send_multipart([ident, rid, empty, self.captured])
                            continue
                        self.returns_forwarded += cmd == "_return"
                        peers[rid] = (ident, cmd)
                        back.send_multipart([rid, empty, body])
                    else:
                        rid, empty, reply = back.recv_multipart()
                        ident, cmd = peers.pop(rid, (None, None))
                        if cmd is not None and self.captured is None and decode(reply).get("enc") == "aes":
                            self.captured = reply
                        if ident is not None:
                            front.send_multipart([ident, rid, empty, reply])
        finally:
            front.close()
            back.close()
            ctx.term()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)


def test_stale_sealed_reply_from_a_relay_is_not_trusted_and_the_return_arrives(sandbox):
    sandbox.start_master()
    relay = Relay(sandbox)
    try:
        minion = sandbox.start_minion("m3", master_port=relay.port)
        wait_for(lambda: relay.captured is not None, what="the relay to capture a sealed reply")
        with LocalClient(cfg=sandbox.cfg) as c:
            jid = c.cmd_async("m3", "test.ping")

        def stored() -> bool:
            r = sandbox.run_cli("rx-run", "jobs.lookup_jid", jid, "--out", "json")
            return r.returncode == 0 and json.loads(r.stdout).get("m3") is True
        wait_for(stored, what="the return of m3 in the job cache")
        assert relay.swapped == 1 and relay.returns_forwarded == 1
        wait_for(lambda: "does not authenticate for this request" in minion.output(), what="the minion's warning")
        with LocalClient(cfg=sandbox.cfg) as c:
            assert c.cmd("m3", "test.ping") == {"m3": True}
    finally:
        relay.close()


# ---------------------------------------------------------------- item 7: a low-order ephemeral key

def _signed_with_eph(identity: Identity, minion_id: str, eph: bytes) -> bytes:
    unsigned = AuthRequest(id=minion_id, pub=identity.public, eph=eph, ts=time.time(), nonce=os.urandom(16),
                           sig=b"\0" * 64)
    req = AuthRequest(**{**unsigned.__dict__, "sig": identity.sign(unsigned.signed_bytes())})
    return encode(ClearRequest("_auth", req.to_wire()).to_wire())


@pytest.mark.parametrize("eph", [b"\0" * 32, b"\1" + b"\0" * 31, (2**255 - 20).to_bytes(32, "little")],
                         ids=["all-zero", "one", "p-1"])
def test_low_order_ephemeral_key_gets_a_clear_error(fleet, eph):
    """Properly signed by an accepted minion's key (m1) and by an unknown one: an AUTH error naming `eph`,
    no key filed, no traceback in the master's log, and the master still answers."""
    raw = RawClient(f"tcp://127.0.0.1:{fleet.ret_port}")
    try:
        for identity, minion_id in ((_minion_identity(fleet, "m1"), "m1"), (Identity.generate(), "stranger")):
            reply = raw.request(None, raw=_signed_with_eph(identity, minion_id, eph))
            assert reply["ok"] is False and reply["error"]["type"] == "auth", reply
            assert "eph" in reply["error"]["message"]
    finally:
        raw.close()
    assert _keys(fleet)["pending"] == []
    with LocalClient(cfg=fleet.cfg) as c:
        assert c.cmd("*", "test.ping") == {"m1": True, "m2": True}
    log = fleet.master.output()
    assert "Traceback" not in log and "unexpected error" not in log


# ---------------------------------------------------------------- item 13: two keys for one new id at once

def _burst(url: str, frames: list[list[bytes]], sockets: int, lockstep: bool = False) -> list[dict]:
    """Send frame groups from `sockets` separate DEALERs (a group's frame j from socket j): all at once, or
    with `lockstep` one group at a time (its frames at the same instant, reaching different workers); returns
    the replies in the order of `frames` flattened."""
    ctx = zmq.Context()
    socks = [ctx.socket(zmq.DEALER) for _ in range(sockets)]
    try:
        for s in socks:
            s.setsockopt(zmq.LINGER, 0)
            s.connect(url)
        for s in socks:  # connected before the burst, so no socket starts late
            wait_for(lambda s=s: s.getsockopt(zmq.EVENTS) & zmq.POLLOUT, what="a connected socket")
        poller = zmq.Poller()
        for s in socks:
            poller.register(s, zmq.POLLIN)
        replies: dict[int, dict] = {}

        def collect(n: int) -> None:
            deadline = time.monotonic() + 60
            while len(replies) < n and time.monotonic() < deadline:
                for s, _ in poller.poll(1000):
                    rid, _empty, body = s.recv_multipart()
                    replies[int.from_bytes(rid, "big")] = decode(body)
            assert len(replies) == n, f"{n - len(replies)} requests got no reply"
        n = 0
        for group in frames:
            for j, frame in enumerate(group):
                socks[j].send_multipart([n.to_bytes(4, "big"), b"", frame])
                n += 1
            if lockstep:
                collect(n)
        collect(n)
        return [replies[i] for i in range(n)]
    finally:
        for s in socks:
            s.close()
        ctx.term()


@pytest.mark.parametrize("auto_accept", [True, False], ids=["auto_accept", "pending"])
def test_two_keys_for_one_new_id_sent_at_once_have_one_winner(sandbox, auto_accept):
    sandbox.start_master(auto_accept=auto_accept, worker_processes=2)
    ids = [f"race{n}" for n in range(40)]
    idents = {i: [Identity.generate(), Identity.generate()] for i in ids}
    pairs = {i: [start_auth(ident, i) for ident in idents[i]] for i in ids}
    replies = _burst(f"tcp://127.0.0.1:{sandbox.ret_port}", [[_auth_frame(p) for p in pairs[i]] for i in ids], 2,
                     lockstep=True)
    master_pub = master_public_key(sandbox.cfg)
    keys = _keys(sandbox)
    filed = "accepted" if auto_accept else "pending"
    winners = {}
    for n, minion_id in enumerate(ids):
        outcomes = [finish_auth(p, replies[2 * n + k], master_pub) for k, p in enumerate(pairs[minion_id])]
        statuses = sorted(o.status for o in outcomes)
        assert statuses == sorted([filed, "denied"]), f"{minion_id}: {statuses}"
        win, lose = (0, 1) if outcomes[0].status == filed else (1, 0)
        assert outcomes[lose].session is None, "the denied key got session keys"
        assert (outcomes[win].session is not None) is auto_accept
        winners[minion_id] = (idents[minion_id][win], idents[minion_id][lose])
        assert minion_id in keys[filed] and minion_id in keys["denied"]
    # the denied key stays denied, gets no keys, and cannot act as the id; the winner can
    raw = RawClient(f"tcp://127.0.0.1:{sandbox.ret_port}")
    try:
        for minion_id in ids[:5]:
            win, lose = winners[minion_id]
            again = start_auth(lose, minion_id)
            out = finish_auth(again, raw.request(None, raw=_auth_frame(again)), master_pub)
            assert out.status == "denied" and out.session is None
            if auto_accept:
                fresh = start_auth(win, minion_id)
                session = finish_auth(fresh, raw.request(None, raw=_auth_frame(fresh)), master_pub).session
                forged = seal_request(os.urandom(32), minion_id, session.serial, "_minion_event",
                                      {"tag": "custom/x", "data": {}})
                assert raw.request(forged.to_wire())["error"]["type"] == "auth"
                ok = seal_request(session.request_key, minion_id, session.serial, "_minion_event",
                                  {"tag": "custom/x", "data": {}})
                assert raw.request(ok.to_wire())["ok"] is True
    finally:
        raw.close()
    assert "Traceback" not in sandbox.master.output()


# ---------------------------------------------------------------- item 10: a flood of made-up ids

def test_flood_of_made_up_ids_cannot_lock_out_real_minions(sandbox):
    """5x max_pending_keys made-up ids at once from several sockets: exactly max_pending_keys stay pending.
    Then a real minion listed in autosign_file is accepted at once and answers, and one not listed is filed
    pending (the oldest made-up key makes room), accepted with rx-key -a, and answers."""
    autosign = sandbox.root / "autosign.conf"
    autosign.write_text("# pre-authorised\nlisted-*\n")
    autosign.chmod(0o644)
    sandbox.start_master(max_pending_keys=FLOOD_MAX_PENDING, autosign_file=str(autosign))
    flood = [_auth_frame(start_auth(Identity.generate(), f"fake{n:05d}")) for n in range(5 * FLOOD_MAX_PENDING)]
    url = f"tcp://127.0.0.1:{sandbox.ret_port}"
    replies = _burst(url, [flood[i:i + 4] for i in range(0, len(flood), 4)], 4)
    for _round in range(20):  # answered "busy" (the clear lane was full: nothing filed), sent again as a minion would
        busy = [frame for frame, r in zip(flood, replies) if r.get("error", {}).get("type") == "unavailable"]
        if not busy:
            break
        again = iter(_burst(url, [busy[i:i + 4] for i in range(0, len(busy), 4)], 4))
        replies = [next(again) if r.get("error", {}).get("type") == "unavailable" else r for r in replies]
    assert all(r.get("ok") is True for r in replies), [r for r in replies if r.get("ok") is not True][:3]
    assert len(os.listdir(Path(sandbox.cfg.pki_dir) / "minions_pre")) == FLOOD_MAX_PENDING
    sandbox.start_minion("listed-web1", accept=False)
    with LocalClient(cfg=sandbox.cfg) as c:
        assert c.cmd("listed-web1", "test.ping") == {"listed-web1": True}
    d = sandbox.start_minion("genuine", accept=False, wait=False)
    wait_for(lambda: "genuine" in _keys(sandbox)["pending"], what="the genuine minion's key pending")
    assert len(_keys(sandbox)["pending"]) == FLOOD_MAX_PENDING
    watch = EventWatch(sandbox.cfg, "rx/minion/genuine/start")
    try:
        r = sandbox.run_cli("rx-key", "-a", "genuine", "-y")
        assert r.returncode == 0, r.stderr
        watch.next()
    finally:
        watch.close()
    with LocalClient(cfg=sandbox.cfg) as c:
        assert c.cmd("*", "test.ping") == {"listed-web1": True, "genuine": True}
    assert d.alive()
    log = sandbox.master.output()
    assert "evicted a pending key" in log and "Traceback" not in log


def test_a_group_writable_autosign_file_is_not_used(sandbox):
    autosign = sandbox.root / "autosign.conf"
    autosign.write_text("m*\n")
    autosign.chmod(0o664)
    sandbox.start_master(autosign_file=str(autosign))
    d = sandbox.start_minion("m1", accept=False, wait=False)
    wait_for(lambda: "m1" in _keys(sandbox)["pending"], what="m1 filed pending, not accepted")
    assert _keys(sandbox)["accepted"] == []
    assert "writable by group" in sandbox.master.output()
    assert d.alive()


# ---------------------------------------------------------------- item 14: master_finger wins over a pin

def test_master_finger_overrides_a_pinned_impostor(sandbox):
    """m pins an impostor master first (trust on first use).  The operator then sets master_finger to the
    real master's fingerprint: still pointed at the impostor, m refuses it loudly; pointed at the real master,
    m authenticates, replaces the pin (with an error in its log) and answers."""
    impostor = Sandbox(sandbox.root, layout=Layout(master_conf="imp-conf", master_root="imp", master_log="imp.log"))
    try:
        impostor.start_master()
        impostor.start_minion("m")
        impostor.stop_minions()
        pin = sandbox.minion_dir("m") / "root" / "etc" / "rx" / "pki" / "minion" / "master.pub"
        assert pin.read_bytes() == master_public_key(impostor.cfg)
        sandbox.start_master()
        finger = json.loads(sandbox.run_cli("rx-key", "-F", "--out", "json").stdout)["local"][0]["fingerprint"]
        watch = EventWatch(impostor.cfg, "rx/")
        try:
            d = impostor.start_minion("m", wait=False, master_finger=finger)
            wait_for(lambda: "does not match master_finger" in d.output(), what="the refusal of the impostor")
            assert "it is the pinned key" in d.output()
            assert [t for t, _ in watch.drain(1.0) if t.startswith("rx/minion/m/")] == []
        finally:
            watch.close()
        impostor.stop_minions()
        assert pin.read_bytes() == master_public_key(impostor.cfg)
        d = sandbox.start_minion("m", master_finger=finger)
        with LocalClient(cfg=sandbox.cfg) as c:
            assert c.cmd("m", "test.ping") == {"m": True}
        assert pin.read_bytes() == master_public_key(sandbox.cfg)
        assert "now replaces the pin" in d.output()
    finally:
        impostor.close()
