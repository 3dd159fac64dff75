"""rx-api's bad input on real daemons (rx-master, minions m1 and m2, the `rx-api` process): missing, forged,
malformed, expired and revoked tokens (401); a user outside their rights (403, nothing published, audit lines);
disabled clients; unknown clients and malformed lowstates (400, nothing published); huge bodies (413, by
Content-Length and chunked); slow clients (others served, the slow ones cut off); path traversal in /static;
CSRF on the session cookie; CORS; login lockout (429); the master gone (503)."""

from __future__ import annotations

import asyncio
import http.client
import json
import secrets
import select
import socket
import time
from pathlib import Path
from typing import Iterator

import pytest

from rx.master.services import open_services
from rx.master.store import TokenRecord
from tests.support.api import ALICE, BOB, ApiServer, ApiSite, other_config
from tests.support.sandbox import Sandbox

SECRET = "TOPSECRET-" + secrets.token_hex(4)


@pytest.fixture(scope="module")
def site(module_sandbox: Sandbox) -> Iterator[ApiSite]:
    box = module_sandbox
    static = box.root / "static"
    (static / "js").mkdir(parents=True)
    (static / "index.html").write_text("<!doctype html>")
    (static / "js" / "app.js").write_text("console.log('rx')")
    (static / ".secret").write_text(SECRET)
    (box.root / "outside.txt").write_text(SECRET)
    (static / "link").symlink_to(box.root / "outside.txt")
    site = ApiSite.start(box, static)
    try:
        yield site
    finally:
        site.api.stop()


PING = [{"client": "local", "tgt": "*", "fun": "test.ping"}]


# ---------------------------------------------------------------- tokens (401)

def test_missing_forged_and_malformed_tokens_are_401(site):
    for headers in ({}, {"X-Auth-Token": secrets.token_urlsafe(32)}, {"X-Auth-Token": "../../etc/passwd"},
                    {"Authorization": f"Bearer {secrets.token_urlsafe(32)}"},
                    {"Cookie": "session_id=forged-token-0123456", "X-Requested-With": "XMLHttpRequest"}):
        answer = site.api.call("POST", "/", PING, auth=False, headers=headers)
        assert answer.status == 401, (headers, answer.body)
        assert answer.json["status"] == 401 and answer.headers["WWW-Authenticate"] == "Session"
    assert site.audited(action="api", path="/", status=401)["outcome"] == "refused"


def test_an_expired_token_is_401(site):
    token = secrets.token_urlsafe(32)
    services = open_services(site.cfg)
    try:
        now = time.time()
        asyncio.run(services.stores.tokens.put(TokenRecord(token, "alice", "file", now - 100, now - 1, ())))
    finally:
        services.close()
    answer = site.api.call("POST", "/", PING, auth=False, headers={"X-Auth-Token": token})
    assert answer.status == 401 and "expired" in answer.json["return"]


def test_the_query_token_is_for_get_only(site):
    assert site.api.call("GET", f"/keys?token={site.api.token}", auth=False).status == 200
    assert site.api.call("POST", f"/?token={site.api.token}", PING, auth=False).status == 401


def test_a_token_in_the_url_is_never_written_to_a_log(site):
    """EventSource and Salt's `/ws/<token>` carry the token in the URL: neither rx-api's log nor the audit log
    shows it (a log reader must not be able to take over the session)."""
    token = site.user("alice", ALICE).token
    status, _headers, _body = site.raw("GET", f"/ws/{token}")
    assert status in (400, 426), status  # not a WebSocket handshake
    status, _headers, _body = site.raw("GET", f"/keys?token={token}&x=1")
    assert status == 200
    site.audited(action="api", path="/ws/***")
    assert token not in Path(site.cfg.audit_log_file).read_text()
    assert token not in site.api.daemon.output()


# ---------------------------------------------------------------- rights (403)

def test_a_job_outside_the_users_rights_is_403_and_nothing_is_published(site):
    bob = site.user("bob", BOB)
    before = site.jobs()
    for chunk in ({"tgt": "*", "fun": "test.ping"}, {"tgt": "m1", "fun": "cmd.run", "arg": ["id"]},
                  {"tgt": "nosuch*", "fun": "test.ping"}):
        answer = bob.call("POST", "/", [{"client": "local", **chunk}])
        assert answer.status == 403, answer.body
        line = site.audited(action="publish", user="bob", fun=chunk["fun"], target=chunk["tgt"])
        assert line["outcome"] == "refused" and line["reason"] == answer.json["return"]
    assert site.jobs() == before
    assert site.audited(action="api", user="bob", status=403)["outcome"] == "refused"
    assert bob.call("POST", "/", [{"client": "local", "tgt": "m1", "fun": "test.ping"}]).json == {"return": [{"m1": True}]}


def test_runner_and_wheel_need_their_rights(site):
    bob = site.user("bob", BOB)
    runner = bob.call("POST", "/", [{"client": "runner", "fun": "jobs.list_jobs"}])
    assert runner.status == 403 and "may not run the runner function jobs.list_jobs" in runner.json["return"]
    assert site.audited(action="runner", user="bob", fun="jobs.list_jobs")["outcome"] == "refused"
    assert bob.call("POST", "/", [{"client": "wheel", "fun": "key.delete", "match": "*"}]).status == 403
    assert bob.call("GET", "/keys").status == 403
    assert site.api.call("GET", "/keys").json["return"]["minions"] == ["m1", "m2"]


def test_a_user_without_the_runner_right_sees_only_their_own_jobs(site):
    bob = site.user("bob", BOB)
    mine = bob.call("POST", "/", [{"client": "local_async", "tgt": "m1", "fun": "test.ping"}]).json["return"][0]["jid"]
    theirs = site.api.call("POST", "/", [{"client": "local_async", "tgt": "m2", "fun": "test.ping"}]
                           ).json["return"][0]["jid"]
    listed = bob.call("GET", "/jobs").json["return"][0]
    assert mine in listed and theirs not in listed and {j["User"] for j in listed.values()} == {"file:bob"}
    assert bob.call("GET", f"/jobs/{mine}").status == 200
    assert bob.call("GET", f"/jobs/{theirs}").status == 403


def test_disabled_clients_are_403_and_cors_is_opt_in(site, tmp_path):
    assert site.raw("OPTIONS", "/", headers={"Origin": "https://ui.example",
                                             "Access-Control-Request-Method": "POST"})[0] == 403
    status, headers, _ = site.raw("GET", "/", headers={"Origin": "https://ui.example"})
    assert status == 200 and "Access-Control-Allow-Origin" not in headers
    only_local = other_config(site.box, tmp_path, api_enable_clients=["local"],
                              api_cors_origins=["https://ui.example"])
    other = ApiServer.start(site.box, config_dir=only_local, log="rx-api-2.log")
    try:
        other.token = site.api.token
        assert other.call("GET", "/").json["clients"] == ["local"]
        assert other.call("POST", "/", PING).json == {"return": [{"m1": True, "m2": True}]}
        for method, path, body in (("POST", "/", [{"client": "runner", "fun": "jobs.list_jobs"}]),
                                   ("POST", "/", [{"client": "wheel", "fun": "key.list_all"}]),
                                   ("GET", "/keys", None), ("GET", "/jobs", None), ("POST", "/minions", PING)):
            answer = other.call(method, path, body)
            assert answer.status == 403 and "client disabled" in answer.json["return"], (path, answer.body)
        pre = other.call("OPTIONS", "/", headers={"Origin": "https://ui.example", "Access-Control-Request-Method": "POST"})
        assert pre.status == 204 and pre.headers["Access-Control-Allow-Origin"] == "https://ui.example"
        assert "X-Auth-Token" in pre.headers["Access-Control-Allow-Headers"]
        refused = other.call("GET", "/keys", headers={"Origin": "https://ui.example"})
        assert refused.status == 403 and refused.headers["Access-Control-Allow-Origin"] == "https://ui.example"
        evil = other.call("OPTIONS", "/", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
        assert evil.status == 403 and "Access-Control-Allow-Origin" not in evil.headers
    finally:
        other.stop()


# ---------------------------------------------------------------- malformed (400, 404, 406, 413)

BAD_LOWSTATES = [
    ([{"client": "ssh", "tgt": "*", "fun": "test.ping"}], 400, "unknown client 'ssh'"),
    ([{"tgt": "*", "fun": "test.ping"}], 400, "unknown client"),
    ([{"client": "local", "fun": "test.ping"}], 400, "tgt"),
    ([{"client": "local", "tgt": "*", "fun": "test.ping;id"}], 400, "not a function name"),
    ([{"client": "wheel", "fun": "key.gen_accept"}], 400, "no wheel function"),
    ([{"client": "runner", "fun": "nosuch.thing"}], 400, "no runner"),
    ([{"client": "runner", "fun": "jobs.list_job"}], 400, "usage: jobs.list_job(jid)"),
    ([{"client": "local", "tgt": "(m1 or", "tgt_type": "compound", "fun": "test.ping"}], 400, "malformed compound"),
    ("just text", 400, "Lowstates must be a list"),
    ([PING[0], "not a chunk"], 400, "Lowstates must be a list"),
    ([], 400, "empty"),
]


@pytest.mark.parametrize("body,status,words", BAD_LOWSTATES)
def test_malformed_lowstates_are_refused_and_nothing_is_published(site, body, status, words):
    before = site.jobs()
    answer = site.api.call("POST", "/", body)
    assert answer.status == status and words in answer.json["return"], answer.body
    assert site.jobs() == before


@pytest.mark.parametrize("content_type,body,status", [
    ("application/json", b"[{not json", 400),
    ("application/x-yaml", b"a: &a [1]\nb: [*a, *a, *a]\n", 400),
    ("application/json", b"[" * 50_000 + b"]" * 50_000, 400),
    ("application/xml", b"<lowstate/>", 406),
    ("application/json", b"", 400),
])
def test_bodies_that_do_not_parse(site, content_type, body, status):
    answer = site.api.call("POST", "/", raw=body, content_type=content_type)
    assert answer.status == status and answer.json["status"] == status


def test_unknown_paths_and_jobs_are_404(site):
    for path in ("/nosuch", "/jobs/123", f"/jobs/{'9' * 20}", "/minions/a/b"):
        answer = site.api.call("GET", path)
        assert answer.status == 404 and answer.json["status"] == 404, path


def test_huge_bodies_are_413_by_length_and_as_they_stream(site):
    limit = site.cfg.max_request_body_size
    # refused on the declared length alone, before a byte of the body is read (the headers only are sent: a
    # client still sending the body when rx-api closes the connection may see a reset instead of the 413)
    with socket.create_connection(("127.0.0.1", site.api.port), timeout=60) as s:
        s.sendall(f"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Auth-Token: {site.api.token}"
                  f"\r\nContent-Length: {limit + 1}\r\n\r\n".encode())
        head = s.makefile("rb").readline()
    assert head.split()[1] == b"413", head
    conn = http.client.HTTPConnection("127.0.0.1", site.api.port, timeout=60)
    try:
        chunks = (b"[" + b" " * 65536 for _ in range(limit // 65536 + 2))
        conn.request("POST", "/", body=chunks, encode_chunked=True,
                     headers={"Content-Type": "application/json", "X-Auth-Token": site.api.token})
        resp = conn.getresponse()
        assert resp.status == 413 and json.loads(resp.read())["status"] == 413
    finally:
        conn.close()
    assert site.api.call("POST", "/", PING).status == 200
    login = site.api.call("POST", "/login", raw=b" " * (100 * 1024), auth=False)  # credentials are small
    assert login.status == 413 and "65536" in login.json["return"]


# ---------------------------------------------------------------- slow clients

def test_slow_clients_do_not_block_others_and_are_cut_off(site):
    slow = []
    for n in range(20):
        s = socket.create_connection(("127.0.0.1", site.api.port))
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n" if n % 2 else
                  b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n[")
        slow.append(s)
    t0 = time.monotonic()
    assert site.api.call("POST", "/", PING, timeout=15).json == {"return": [{"m1": True, "m2": True}]}
    assert site.api.call("GET", "/", timeout=5).status == 200
    open_ = set(slow)
    deadline = t0 + 60
    while open_ and time.monotonic() < deadline:
        for s in list(open_):
            try:
                s.send(b"X")  # one byte a second: a header line or body that never ends
            except OSError:
                open_.discard(s)
        readable, _, _ = select.select(list(open_), [], [], 1.0)
        for s in readable:
            try:
                if not s.recv(4096):
                    open_.discard(s)
            except OSError:
                open_.discard(s)
    for s in slow:
        s.close()
    assert not open_, f"{len(open_)} slow connections still open after {time.monotonic() - t0:.0f}s"


# ---------------------------------------------------------------- static files

@pytest.mark.parametrize("path", [
    "/static/../outside.txt", "/static/..%2foutside.txt", "/static/%2e%2e/outside.txt", "/static/%2e%2e%2foutside.txt",
    "/static/link", "/static/.secret", "/static/js/../../outside.txt", "/static//etc/passwd", "/static/%2fetc%2fpasswd",
    "/static/....//outside.txt", "/static/js/..%5c..%5coutside.txt", "/static/%00", "/static/",
])
def test_path_traversal_in_static_is_refused(site, path):
    status, _headers, body = site.raw("GET", path)
    assert status in (403, 404), (path, status)
    assert SECRET.encode() not in body and b"root:" not in body


def test_static_files_are_served(site):
    status, headers, body = site.raw("GET", "/static/js/app.js")
    assert status == 200 and body == b"console.log('rx')" and headers["X-Content-Type-Options"] == "nosniff"


# ---------------------------------------------------------------- CSRF, lockout, hooks

def test_the_session_cookie_needs_x_requested_with_and_the_same_origin(site):
    cookie = {"Cookie": f"session_id={site.api.token}"}
    assert site.api.call("POST", "/", PING, auth=False, headers=cookie).status == 403
    assert site.api.call("POST", "/logout", auth=False, headers=cookie).status == 403
    same = {**cookie, "X-Requested-With": "XMLHttpRequest", "Origin": f"http://127.0.0.1:{site.api.port}"}
    assert site.api.call("POST", "/", PING, auth=False, headers=same).status == 200
    evil = {**same, "Origin": "https://evil.example"}
    answer = site.api.call("POST", "/", PING, auth=False, headers=evil)
    assert answer.status == 403 and "cross-site" in answer.json["return"]
    assert site.api.call("GET", "/keys", auth=False, headers={**cookie, "Origin": "https://evil.example"}).status == 403
    assert site.api.call("GET", "/keys", auth=False, headers=cookie).status == 200


def test_logins_are_locked_out_after_repeated_failures(site):
    body = json.dumps({"username": "mallory", "password": "guess", "eauth": "file"}).encode()
    headers = {"Content-Type": "application/json"}
    statuses = [site.raw("POST", "/login", body, headers, source="127.0.0.2")[0]
                for _ in range(site.cfg.auth_failures_max + 1)]
    assert statuses[:-1] == [401] * site.cfg.auth_failures_max
    status, answer_headers, answer = site.raw("POST", "/login", body, headers, source="127.0.0.2")
    assert status == 429 and int(answer_headers["Retry-After"]) > 0 and b"too many failed logins" in answer
    assert site.audited(action="login", user="mallory", outcome="locked")["source"] == "127.0.0.2"
    assert site.user("alice", ALICE).token  # another address and user are not locked out


def test_hooks_need_a_token_and_a_plain_path(site):
    assert site.api.call("POST", "/hook/ci", {"a": 1}, auth=False).status == 401
    for path in ("/hook/a/../b", "/hook/a%20b", "/hook/" + "a" * 300, "/hook/a//b"):
        assert site.api.call("POST", path, {"a": 1}).status == 400, path


def test_the_master_gone_is_503(site):
    site.box.stop_master()
    answer = site.api.call("POST", "/", PING)
    assert answer.status == 503 and "not running" in answer.json["return"]
    assert site.api.call("POST", "/hook/x", {"a": 1}).status == 503
    assert site.api.call("GET", "/").status == 200
