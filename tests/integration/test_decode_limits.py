"""Every decoded plaintext gets the envelope's structural limits (issue 8, item 6): a minion-key holder's
sealed `_return` of millions of nested empty arrays, and the same bomb on the local socket, are refused
before decoding, cost the master no memory to speak of, and the master answers right after."""

from __future__ import annotations

from conftest import FakeMinion, RawClient
from rx.client.local import LocalClient
from rx.transport.codec import MAX_FRAME_BYTES, MAX_OBJECTS, encode
from rx.transport.ids import new_jid
from rx.transport.messages import ClearRequest
from tests.support.procs import peak_rss_kb

BOMB = [[[]] * 150] * 100_000
"""15 M objects in 15 MB: within the frame limit and every per-container limit (it used to cost a worker
seconds and about a gigabyte to decode)."""
GROWTH_BOUND_MB = 6 * MAX_FRAME_BYTES / 2**20
"""What the master's processes together may grow by while refusing one such frame: the frame and its
copies (the router's, the worker's, the ciphertext, the plaintext), not its decoded objects."""


def _peaks(pids: list[int]) -> dict[int, int]:
    return {pid: peak_rss_kb(pid) for pid in pids}


def _growth_mb(before: dict[int, int]) -> float:
    return sum(peak_rss_kb(pid) - kb for pid, kb in before.items()) / 1024


def _master_answers(fleet, minion: FakeMinion) -> None:
    assert minion.send_sealed(minion.sealed("_minion_event", {"tag": "after-bomb", "data": {}})) == {"ok": True}
    with LocalClient(cfg=fleet.cfg) as c:
        assert c.cmd("m?", "test.ping") == {"m1": True, "m2": True}  # (the fake minion never answers)
    assert "Traceback" not in fleet.master.output()


def test_sealed_return_bomb_from_an_accepted_minion_is_refused(fleet):
    minion = FakeMinion(fleet, "bomber")
    try:
        assert minion.auth() == "accepted"
        load = {"jid": new_jid(), "fun": "test.ping", "fun_args": [], "retcode": 0, "success": True, "return": BOMB}
        frame = minion.sealed("_return", load)
        assert len(frame) < MAX_FRAME_BYTES
        before = _peaks(fleet.master_pids())
        reply = minion.send_sealed(frame)
        assert reply["ok"] is False and reply["error"]["type"] == "bad_request", reply
        assert f"more than {MAX_OBJECTS} objects" in reply["error"]["message"]
        assert _growth_mb(before) < GROWTH_BOUND_MB
        _master_answers(fleet, minion)
    finally:
        minion.close()


def test_bomb_on_the_local_socket_is_refused(fleet):
    local = RawClient(f"ipc://{fleet.cfg.ret_ipc}")
    minion = FakeMinion(fleet, "witness")
    try:
        before = _peaks(fleet.master_pids())
        publish = ClearRequest("publish", {"key": "x", "tgt": "*", "fun": "test.arg", "arg": BOMB})
        reply = local.request(publish.to_wire())
        assert reply["ok"] is False and reply["error"]["type"] == "bad_request", reply
        assert _growth_mb(before) < GROWTH_BOUND_MB
        assert len(encode(BOMB)) < MAX_FRAME_BYTES
        minion.auth()
        _master_answers(fleet, minion)
    finally:
        local.close()
        minion.close()
