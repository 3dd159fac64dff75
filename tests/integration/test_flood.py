"""Unauthenticated floods on the request port (issue 8, items 9 and 12).

Item 9: a separate process floods `_auth` (signed requests for made-up ids, a new id each time: the
costliest kind, see tests/support/flood.py) from several sockets at full speed; meanwhile root's real
`rx '*' test.ping` runs three times, and every run exits 0 with every minion's answer.

Item 12: one client pushes many large frames without reading a reply, from one and from several
connections; the master's processes together grow by less than the bound that the request router's
queues and the workers' lanes allow (docs/security.md), and the master answers afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zmq

from conftest import FakeMinion, RawClient
from rx.master.handlers import SEALED_LANE
from rx.master.mworker import LANES
from rx.transport.codec import encode
from rx.transport.handshake import start_auth
from rx.transport.messages import AesRequest, ClearRequest
from rx.transport.zmq_devices import PEER_HWM, WORKER_HWM
from tests.support.flood import dealers, dressed_as_sealed
from tests.support.procs import peak_rss_kb, wait_for

REPO = Path(__file__).resolve().parents[2]
MINIONS = ["m1", "m2", "m3"]


def _rx_ping(box, target: str = "*") -> dict:
    r = box.run_cli("rx", target, "test.ping", "--out", "json", timeout=120)
    assert r.returncode == 0, f"rx exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
    return json.loads(r.stdout)


def test_auth_flood_does_not_starve_the_operator(sandbox):
    sandbox.start_master()
    sandbox.start_minions(MINIONS)
    stop, ready = sandbox.root / "flood-stop", sandbox.root / "flood-ready"
    flood = subprocess.Popen(
        [sys.executable, "-m", "tests.support.flood", f"tcp://127.0.0.1:{sandbox.ret_port}", "--kind", "new",
         "--sockets", "4", "--seconds", "300", "--stop-file", str(stop), "--ready-file", str(ready)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: ready.exists() or flood.poll() is not None, what="the flood to reach the master")
        assert flood.poll() is None, flood.communicate()[0]
        for _ in range(3):
            assert _rx_ping(sandbox) == {m: True for m in MINIONS}
        assert flood.poll() is None, "the flood ended before the pings did"
    finally:
        stop.touch()
        out = flood.communicate(timeout=60)[0]
    sent = int(out.split()[1])
    assert sent > 1000, out
    assert "Traceback" not in sandbox.master.output()


FRAME_MB = 4
FRAMES = 192


def _bound_mb(connections: int, workers: int) -> float:
    """What the master's processes together may grow by (sum of each one's peak RSS growth) while a client
    pushes FRAMES frames of FRAME_MB MB without reading replies: per connection the router holds PEER_HWM + 1
    frames; per worker WORKER_HWM in the router and WORKER_HWM in its socket, its sealed lane (and the one
    request that may overfill it), and the request in hand with its copies (frame, ciphertext, failed
    plaintext); plus a quarter for the allocator.  The old 100,000-message queues took all of it."""
    lane = LANES[SEALED_LANE].max_bytes // (FRAME_MB << 20) + 1
    frames = connections * (PEER_HWM + 1) + workers * (2 * WORKER_HWM + lane + 3)
    return frames * FRAME_MB * 1.25


def _peaks(pids: list[int]) -> dict[int, int]:
    return {pid: peak_rss_kb(pid) for pid in pids}


def _push(url: str, connections: int, frames: list[bytes], deadline: float) -> int:
    """Send every frame (round robin over the connections) without reading a reply; returns how many went."""
    ctx = zmq.Context()
    socks = dealers(ctx, url, connections, sndhwm=1, rcvhwm=1)
    sent = 0
    try:
        while sent < len(frames) and time.monotonic() < deadline:
            s = socks[sent % connections]
            if s.poll(100, zmq.POLLOUT):
                s.send_multipart([sent.to_bytes(4, "big"), b"", frames[sent]])
                sent += 1
    finally:
        for s in socks:
            s.close(linger=0)
        ctx.term()
    return sent


@pytest.mark.parametrize("connections", [1, 4])
def test_large_unread_requests_are_bounded_in_bytes(fleet, connections):
    # sealed-looking frames claiming a real minion: the costliest to refuse (decoded, then a failed AES open)
    junk = os.urandom(FRAME_MB << 20)
    frames = [encode(AesRequest(id="m1", serial=1, nonce=os.urandom(12), ct=junk).to_wire()) for _ in range(8)]
    before = _peaks(fleet.master_pids())
    sent = _push(f"tcp://127.0.0.1:{fleet.ret_port}", connections, frames * (FRAMES // len(frames)),
                 time.monotonic() + 120)
    assert sent == FRAMES, "the master stopped taking requests"
    minion = FakeMinion(fleet, "after-push")
    try:
        assert minion.auth() == "accepted"
        assert minion.send_sealed(minion.sealed("_minion_event", {"tag": "after-push", "data": {}})) == {"ok": True}
    finally:
        minion.close()
    assert _rx_ping(fleet, "m?") == {"m1": True, "m2": True}
    growth = sum(peak_rss_kb(pid) - kb for pid, kb in before.items()) / 1024
    bound = _bound_mb(connections, fleet.cfg.worker_processes)
    assert growth < bound < FRAMES * FRAME_MB / 2, f"the master grew by {growth:.0f} MB (bound {bound:.0f} MB)"
    assert "Traceback" not in fleet.master.output()


def test_a_clear_request_dressed_as_sealed_is_refused(fleet):
    """Starting like a sealed request puts a frame in the sealed lane; if it parses as clear, it is refused."""
    minion = FakeMinion(fleet, "dressed")
    raw = RawClient(f"tcp://127.0.0.1:{fleet.ret_port}")
    try:
        auth = ClearRequest("_auth", start_auth(minion.identity, minion.id).request.to_wire())
        reply = raw.request(None, raw=dressed_as_sealed(auth))
        assert reply["ok"] is False and reply["error"]["type"] == "bad_request", reply
        assert minion.auth() == "accepted"  # the same request, not dressed up, is answered
    finally:
        raw.close()
        minion.close()
