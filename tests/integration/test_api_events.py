"""rx-api's event stream on real daemons: a real rx-master with minions m1 and m2, the event routes served by
a real tornado HTTP server on a free port (tests/support/eventsapi.py: the real token check over the
master's token store, file-eauth users), read by real HTTP and WebSocket clients.  A real test.ping shows
its new-job event and one return per minion; resume with Last-Event-ID gets what was missed; a client that
never reads is dropped while another gets everything; the stream survives a master restart; tokens are
required and re-checked; Salt's tags on request."""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from rx.client.synclocal import LocalClient
from tests.support.daemon import Daemon
from tests.support.eventsapi import (Event, SseStream, WsStream, add_file_user, fire, login, revoke, start_server,
                                     wait_live)
from tests.support.procs import free_port, wait_for
from tests.support.sandbox import Sandbox, master_child

PASSWORDS = {"admin": "admin-" + secrets.token_urlsafe(8), "bob": "bob-" + secrets.token_urlsafe(8)}
CLIENT_QUEUE = 200


@dataclass
class Site:
    box: Sandbox
    api: Daemon
    port: int
    tokens: dict[str, str]

    def fire(self, events: list[tuple[str, dict]]) -> None:
        fire(self.box.cfg, events)

    def login(self, user: str) -> str:
        return login(self.box.cfg, user, PASSWORDS[user])


@pytest.fixture(scope="module")
def site(module_sandbox: Sandbox) -> Iterator[Site]:
    box = module_sandbox
    passwords = box.root / "eauth-users"
    for name, pw in PASSWORDS.items():
        add_file_user(passwords, name, pw)
    box.master_overrides = {
        "external_auth": {"file": {"^filename": str(passwords), "admin": [".*", "@runner"],
                                   "bob": [{"m1": ["test.ping"]}]}},
        "api_event_client_queue": CLIENT_QUEUE, "api_event_replay": 1000, "api_event_keepalive": 1.0}
    box.start_master()
    box.start_minion("m1")
    box.start_minion("m2")
    port = free_port()
    api = start_server(box.root / "api-events.log", box.master_dir, port, "--token-recheck", "1")
    try:
        tokens = {user: login(box.cfg, user, pw) for user, pw in PASSWORDS.items()}
        wait_live(box.cfg, port, tokens["admin"])
        s = Site(box, api, port, tokens)
        yield s
    finally:
        api.stop()


def ping(site: Site, tgt: str = "*", token: str | None = None) -> str:
    with LocalClient(cfg=site.box.cfg, token=token) as client:
        out = client.cmd(tgt, "test.ping", full_return=True)
        assert all(r["ret"] is True for r in out.values()) and out, out
        return next(iter(out.values()))["jid"]


def job_events(stream, jid: str, minions: set[str]) -> list[Event]:
    """The stream's events of job `jid` until its new-job event and a return from each of `minions`."""
    def done(got: list[Event]) -> bool:
        tags = {e.tag for e in got}
        return f"rx/job/{jid}/new" in tags and {f"rx/job/{jid}/ret/{m}" for m in minions} <= tags
    return [e for e in stream.collect(done) if e.tag.startswith(f"rx/job/{jid}/")]


# ---------------------------------------------------------------- authentication

@pytest.mark.parametrize("token", [None, "forged-" + "x" * 40])
def test_no_stream_without_a_valid_token(site, token):
    sse = SseStream(site.port, token)
    body = json.loads(sse.body)
    assert sse.status == 401 and body["status"] == 401
    assert body["return"] == ("Please log in" if token is None else "unknown or revoked token: log in again (rx -a EAUTH -T)")
    assert SseStream(site.port, query=f"token={token}" if token else "").status == 401
    assert WsStream(site.port, "/ws", token).status == 401
    assert WsStream(site.port, f"/ws/{token or 'none'}").status == 401


def audit_lines(site: Site) -> list[dict]:
    return [json.loads(line) for line in Path(site.box.cfg.audit_log_file).read_text().splitlines()]


def test_every_stream_has_an_audit_line_without_its_token(site):
    token = site.tokens["bob"]
    before = len(audit_lines(site))
    stream = SseStream(site.port, token, query="tag=test/audit/")
    site.fire([("test/audit/1", {})])
    stream.next()
    stream.close()
    SseStream(site.port, "forged-" + "y" * 40).close()
    ws = WsStream(site.port, f"/ws/{token}")
    ws.close()
    # a refused WebSocket of the test before may write its line late (when its connection ends): look for ours
    def ours() -> list[dict]:
        lines = [e for e in audit_lines(site)[before:] if e["action"] == "api"]
        return [next((e for e in lines if (e["path"], e["status"]) == want), {}) for want in (
            ("/events", 200), ("/events", 401), ("/ws/***", 101))]
    wait_for(lambda: all(ours()), what="the audit lines of the two streams and the refused one")
    sse, refused, ws_line = ours()
    assert (sse["user"], sse["eauth"], sse["outcome"], sse["events"]) == ("bob", "file", "allowed", 1)
    assert (refused["user"], refused["outcome"]) == ("-", "refused")
    assert (ws_line["user"], ws_line["outcome"]) == ("bob", "allowed")
    assert token not in Path(site.box.cfg.audit_log_file).read_text()


def test_a_revoked_token_ends_the_stream(site):
    token = site.login("admin")
    stream = SseStream(site.port, token, query="tag=test/nothing/")
    assert stream.status == 200
    assert revoke(site.box.cfg, token)
    closed = stream.next(match=lambda e: e.tag == "rx/api/closed")
    assert "no longer valid" in closed.data["reason"]
    assert stream.ended.wait(10)


# ---------------------------------------------------------------- the stream

def test_sse_shows_a_real_ping_with_a_return_per_minion(site):
    stream = SseStream(site.port, site.tokens["admin"], query="tag=rx/job/")
    assert stream.status == 200 and stream.headers["Content-Type"] == "text/event-stream"
    jid = ping(site)
    got = job_events(stream, jid, {"m1", "m2"})
    new = next(e for e in got if e.tag.endswith("/new"))
    assert new.data["fun"] == "test.ping" and sorted(new.data["minions"]) == ["m1", "m2"]
    rets = [e for e in got if "/ret/" in e.tag]
    assert {e.data["id"] for e in rets} == {"m1", "m2"} and all(e.data["return"] is True for e in rets)
    ids = [e.id for e in got]
    assert all(isinstance(i, int) for i in ids) and ids == sorted(ids) and len(set(ids)) == len(ids)
    stream.close()


def test_an_idle_stream_gets_keepalive_comments_uncompressed(site):
    """rx-api compresses responses (compress_response), but not the stream: each batch must go out as written."""
    stream = SseStream(site.port, site.tokens["admin"], query="tag=test/idle/", headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in stream.headers
    wait_for(lambda: stream.keepalives >= 1, what="a keep-alive comment")
    stream.close()


@pytest.mark.parametrize("how", ["header", "query"])
def test_resume_with_last_event_id_gets_what_was_missed(site, how):
    prefix = f"test/resume/{how}/"
    first = SseStream(site.port, site.tokens["admin"], query=f"tag={prefix}")
    site.fire([(prefix + "0", {"n": 0})])
    seen = first.next()
    first.close()
    site.fire([(prefix + str(n), {"n": n}) for n in range(1, 6)])
    if how == "header":
        again = SseStream(site.port, site.tokens["admin"], query=f"tag={prefix}", headers={"Last-Event-ID": str(seen.id)})
    else:
        again = SseStream(site.port, site.tokens["admin"], query=f"tag={prefix}&last_event_id={seen.id}")
    got = again.collect(lambda g: len(g) == 5)
    assert [e.data["n"] for e in got] == [1, 2, 3, 4, 5] and all(e.id > seen.id for e in got)
    again.close()


def test_resume_from_beyond_the_window_is_marked(site):
    stream = SseStream(site.port, site.tokens["admin"], query="tag=test/none/", headers={"Last-Event-ID": "1"})
    gap = stream.next()
    assert gap.tag == "rx/api/gap" and gap.id is None and gap.data["last_event_id"] == 1
    stream.close()


def _never_reading(port: int, path: str, token: str, websocket: bool) -> socket.socket:
    """A client that asks for the stream (for a WebSocket: the handshake and `websocket client ready`, masked
    as a client must) and then never reads, with a small receive buffer."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    head = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Auth-Token: {token}\r\n"
    if websocket:
        key = base64.b64encode(os.urandom(16)).decode()
        head += f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
    sock.sendall(head.encode() + b"\r\n")
    if websocket:
        text, mask = b"websocket client ready", os.urandom(4)
        sock.sendall(bytes([0x81, 0x80 | len(text)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(text)))
    return sock


@pytest.fixture(scope="module")
def quiet_api(site: Site) -> Iterator[tuple[Daemon, int]]:
    """A second events server whose WebSocket pings are far apart: a WebSocket client that never reads would
    otherwise be closed for its missing pongs (after api_event_keepalive) before its queue fills."""
    port = free_port()
    api = start_server(site.box.root / "api-quiet.log", site.box.master_dir, port, "--set", "api_event_keepalive=600")
    try:
        wait_live(site.box.cfg, port, site.tokens["admin"])
        yield api, port
    finally:
        api.stop()


@pytest.mark.parametrize("websocket", [False, True], ids=["sse", "websocket"])
def test_a_client_that_never_reads_is_dropped_and_another_gets_everything(site, quiet_api, websocket):
    prefix = f"test/flood/{int(websocket)}/"
    token = site.tokens["admin"]
    api, port = quiet_api
    log = Path(api.log)
    drops = log.read_text().count("dropped a client that does not read its stream")
    path = f"/ws?tag={prefix}" if websocket else f"/events?tag={prefix}"
    slow = _never_reading(port, path, token, websocket)
    reader = SseStream(port, token, query=f"tag={prefix}")
    payload = "x" * 8192
    got: list[Event] = []
    chunk = 0
    # chunks of 100 events of 8 KiB, each once the reader has the one before, until the slow one is dropped
    # (the kernel's socket buffers take a few MiB first) and then 5 more
    while chunk < 5 or log.read_text().count("dropped a client that does not read its stream") == drops:
        assert chunk < 100, "the client that never reads was not dropped after 80 MiB"
        site.fire([(f"{prefix}{chunk}/{n}", {"n": chunk * 100 + n, "pad": payload}) for n in range(100)])
        got += reader.collect(lambda g: len(g) == 100)
        chunk += 1
    for more in range(chunk, chunk + 5):
        site.fire([(f"{prefix}{more}/{n}", {"n": more * 100 + n, "pad": payload}) for n in range(100)])
        got += reader.collect(lambda g: len(g) == 100)
    total = (chunk + 5) * 100
    assert [e.data["n"] for e in got] == list(range(total))
    received = bytearray()
    slow.settimeout(20)
    try:
        while data := slow.recv(1 << 16):
            received += data
    except ConnectionResetError:
        pass
    slow.close()
    assert received.count(b'"pad"') < total  # the connection ended before it had everything: dropped
    assert log.read_text().count("dropped a client that does not read its stream") == drops + 1
    # its request ended (the access log's line) while the reader's goes on
    wait_for(lambda: f"GET {path} " in log.read_text(), what="the dropped client's request to end")
    assert not reader.ended.is_set()
    reader.close()


def test_a_user_sees_their_own_jobs_not_others(site):
    bob = SseStream(site.port, site.tokens["bob"])
    root_jid = ping(site)
    bob_jid = ping(site, "m1", token=site.tokens["bob"])
    site.fire([("test/rights/sentinel", {})])
    got = bob.collect(lambda g: any(e.tag == "test/rights/sentinel" for e in g))
    tags = {e.tag for e in got}
    assert {f"rx/job/{bob_jid}/new", f"rx/job/{bob_jid}/ret/m1"} <= tags
    assert not [t for t in tags if root_jid in t]
    bob.close()


def test_websocket_gets_the_same_events(site):
    token = site.tokens["admin"]
    by_header = WsStream(site.port, "/ws", token, query="tag=rx/job/")
    by_path = WsStream(site.port, f"/ws/{token}", query="tag=rx/job/")
    formatted = WsStream(site.port, "/ws", token, query="format_events")
    assert by_header.status == by_path.status == formatted.status == 101
    wait_for(lambda: by_header.texts and by_path.texts and formatted.texts, what="the ready acknowledgements")
    jid = ping(site)
    for ws in (by_header, by_path):
        got = job_events(ws, jid, {"m1", "m2"})
        assert len([e for e in got if "/ret/" in e.tag]) == 2 and all(e.id for e in got)
        assert ws.texts[0] == "server received message"
        assert all(t.startswith("data: {") and t.endswith("}\n\n") for t in ws.texts[1:])
    summary = formatted.next(match=lambda e: e.data.get("jobs", {}).get(jid, {}).get("state") == "complete")
    assert set(summary.data["jobs"][jid]["minions"]) == {"m1", "m2"}
    for ws in (by_header, by_path, formatted):
        ws.close()
    assert "GET /ws/*** " in Path(site.api.log).read_text() and token not in Path(site.api.log).read_text()


def test_salt_event_tags(site):
    port = free_port()
    api = start_server(site.box.root / "api-salt.log", site.box.master_dir, port, "--set", "salt_event_tags=true")
    try:
        wait_live(site.box.cfg, port, site.tokens["admin"])
        stream = SseStream(port, site.tokens["admin"], query="tag=salt/job/")
        jid = ping(site)
        got = stream.collect(lambda g: len([e for e in g if jid in e.tag]) == 3)
        new = next(e for e in got if e.tag == f"salt/job/{jid}/new")
        assert set(new.data) == {"jid", "tgt", "tgt_type", "fun", "arg", "minions", "missing", "user", "_stamp"}
        ret = next(e for e in got if e.tag == f"salt/job/{jid}/ret/m1")
        assert ret.data["cmd"] == "_return" and ret.data["return"] is True and ret.data["success"] is True
        assert set(ret.data) == {"cmd", "id", "jid", "fun", "fun_args", "return", "retcode", "success", "_stamp"}
        stream.close()
    finally:
        api.stop()


def test_event_publisher_killed_the_stream_resumes(site):
    """The master's supervisor restarts a killed event publisher (a new bus socket, the same master): the hub
    notices the socket was replaced and subscribes again."""
    stream = SseStream(site.port, site.tokens["admin"], query="tag=test/eventpub/")
    victim = master_child(site.box.master.pid, "event-publisher")
    assert victim is not None
    os.kill(victim, signal.SIGKILL)
    assert stream.next(match=lambda e: e.tag == "rx/api/bus").data["state"] == "lost"
    assert stream.next(match=lambda e: e.tag == "rx/api/bus").data["state"] == "back"
    site.fire([("test/eventpub/after", {"ok": True})])
    assert stream.next().data == {"ok": True}
    stream.close()


def test_master_restart_the_stream_resumes(site):
    stream = SseStream(site.port, site.tokens["admin"], query="tag=test/restart/")
    site.box.stop_master()
    lost = stream.next(match=lambda e: e.tag == "rx/api/bus")
    assert lost.data["state"] == "lost" and isinstance(lost.id, int)
    site.box.start_master()
    back = stream.next(match=lambda e: e.tag == "rx/api/bus")
    assert back.data["state"] == "back" and back.id > lost.id
    site.fire([("test/restart/after", {"ok": True})])
    assert stream.next().data == {"ok": True}
    stream.close()
    assert site.api.alive()
