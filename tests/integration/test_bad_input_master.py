"""Garbage on the request port: each bad frame is logged and dropped, no worker
dies or wedges, and the master answers test.ping right after."""

from __future__ import annotations

import os

import msgpack
import pytest
import zmq

from conftest import RawClient
from rx.client.local import LocalClient
from rx.transport.codec import MAX_FRAME_BYTES, encode
from tests.support.procs import children_of, wait_for

BAD_BODIES = {
    "random bytes": os.urandom(64),
    "truncated msgpack": encode({"enc": "clear", "cmd": "_auth", "load": {"id": "x" * 50}})[:-7],
    "not a map": encode([1, 2, 3]),
    "wrong field types": encode({"enc": "clear", "cmd": 5, "load": "nope"}),
    "unknown enc": encode({"enc": "rot13", "cmd": "publish", "load": {}}),
    "unknown clear cmd": encode({"enc": "clear", "cmd": "_prep_auth_info", "load": {}}),
    "reflection attempt": encode({"enc": "clear", "cmd": "__init__", "load": {}}),
    "auth with wrong types": encode({"enc": "clear", "cmd": "_auth", "load": {"id": 1, "pub": "x"}}),
    "aes with bad nonce": encode({"enc": "aes", "id": "m1", "serial": 1, "nonce": b"short", "ct": b"x"}),
    "aes garbage ciphertext": encode({"enc": "aes", "id": "m1", "serial": 1, "nonce": b"\0" * 12, "ct": os.urandom(40)}),
    "aes path traversal id": encode({"enc": "aes", "id": "../../etc/passwd", "serial": 1, "nonce": b"\0" * 12,
                                     "ct": b"x"}),
    "deep nesting": b"\x91" * 200 + b"\xc0",
    "huge declared map": b"\xdf\xff\xff\xff\xff",
    "ext type": msgpack.packb(msgpack.ExtType(1, b"abc")),
    "decode bomb (15 MB of nested empty arrays)": msgpack.packb([[[]] * 150] * 100_000),
    "trailing bytes": encode({"enc": "clear", "cmd": "_auth", "load": {}}) + b"\x00",
}


def _worker_pids(fleet) -> set[int]:
    return set(children_of(fleet.master.pid))


@pytest.mark.parametrize("name", sorted(BAD_BODIES))
def test_bad_frame_gets_error_reply_and_master_still_answers(fleet, name):
    before = _worker_pids(fleet)
    raw = RawClient(f"tcp://127.0.0.1:{fleet.ret_port}")
    try:
        reply = raw.request(None, raw=BAD_BODIES[name])
        assert reply["ok"] is False and reply["error"]["type"] in ("bad_request", "auth", "reauth")
    finally:
        raw.close()
    with LocalClient(cfg=fleet.cfg) as c:
        assert c.cmd("*", "test.ping") == {"m1": True, "m2": True}
    assert _worker_pids(fleet) == before, "a master process died on bad input"
    assert "Traceback" not in fleet.master.output()


def test_flood_of_garbage_then_ping(fleet):
    before = _worker_pids(fleet)
    raw = RawClient(f"tcp://127.0.0.1:{fleet.ret_port}")
    try:
        bodies = list(BAD_BODIES.values())
        for i in range(2000):
            raw.send_frames([i.to_bytes(4, "big"), b"", bodies[i % len(bodies)]])
        # extra shapes: no delimiter, many frames, empty message
        raw.send_frames([b"no-delimiter"])
        raw.send_frames([b"a", b"", b"b", b"c", b"d"])
        raw.send_frames([b""])
        reply = raw.request({"enc": "clear", "cmd": "nope", "load": {}})
        assert reply["ok"] is False
    finally:
        raw.close()
    with LocalClient(cfg=fleet.cfg) as c:
        assert c.cmd("*", "test.ping") == {"m1": True, "m2": True}
    assert _worker_pids(fleet) == before, fleet.master.output()
    log = fleet.master.output()
    assert "dropped request" in log and "Traceback" not in log


def test_oversized_frame_is_dropped_by_transport(fleet):
    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(f"tcp://127.0.0.1:{fleet.ret_port}")
    try:
        s.send_multipart([b"1", b"", b"\x00" * (MAX_FRAME_BYTES + 1)])
        assert s.poll(1000) == 0, "the master answered a frame over the size limit"
    finally:
        s.close()
        ctx.term()
    with LocalClient(cfg=fleet.cfg) as c:
        assert c.cmd("*", "test.ping") == {"m1": True, "m2": True}


def test_raw_tcp_garbage(fleet):
    import socket
    for payload in (b"GET / HTTP/1.0\r\n\r\n", os.urandom(4096), b"\xff" * 10 + b"\x00" * 100):
        with socket.create_connection(("127.0.0.1", fleet.ret_port)) as s:
            s.sendall(payload)
    with socket.create_connection(("127.0.0.1", fleet.pub_port)) as s:
        s.sendall(os.urandom(1024))
    with LocalClient(cfg=fleet.cfg) as c:
        assert wait_for(lambda: c.cmd("*", "test.ping") == {"m1": True, "m2": True}, what="ping after garbage")


def test_publish_over_the_network_is_refused_even_with_the_root_key(fleet, tmp_path):
    """The root key only works on the master's local socket: a remote publish is refused, nothing runs."""
    from pathlib import Path
    from rx.transport.messages import ClearRequest, PublishRequest
    marker = tmp_path / "remote-publish"
    key = Path(fleet.cfg.root_key_path).read_text().strip()
    jobs_before = set(os.listdir(fleet.cfg.jobs_dir))
    raw = RawClient(f"tcp://127.0.0.1:{fleet.ret_port}")
    try:
        for cmd in ("publish", "preview"):
            load = PublishRequest(key=key, tgt="*", fun="cmd.run", arg=[f"touch {marker}"]).to_wire()
            reply = raw.request(ClearRequest(cmd, load).to_wire())
            assert reply["ok"] is False and reply["error"]["type"] == "bad_request"
    finally:
        raw.close()
    with LocalClient(cfg=fleet.cfg) as c:
        assert c.cmd("*", "test.ping") == {"m1": True, "m2": True}
    assert set(os.listdir(fleet.cfg.jobs_dir)) - jobs_before and not marker.exists()
    assert len(set(os.listdir(fleet.cfg.jobs_dir)) - jobs_before) == 1, "only the local ping was published"
