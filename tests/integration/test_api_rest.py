"""rx-api's REST surface on real daemons: a real rx-master, real minions m1 and m2 (and m3, whose key waits),
the real `rx-api` process on a free loopback port, users of the `file` eauth back end, a real HTTP client
(urllib), and the real `pepper` (salt-api's command-line client from PyPI).  Salt's routes, fields, status
codes and shapes; every publish decided by the master's worker, every request in the audit log."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from rx.client.events import EventWatch
from tests.support.api import ALICE, BOB, ApiServer, ApiSite, other_config
from tests.support.daemon import Daemon
from tests.support.procs import DEADLINE, wait_for
from tests.support.sandbox import Sandbox, load_master



@pytest.fixture(scope="module")
def site(module_sandbox: Sandbox) -> Iterator[ApiSite]:
    box = module_sandbox
    static = box.root / "static"
    static.mkdir()
    (static / "index.html").write_text("<!doctype html><title>rx</title>")
    site = ApiSite.start(box, static)
    try:
        yield site
    finally:
        site.api.stop()


def test_welcome_and_the_dashboard_hook(site):
    answer = site.api.call("GET", "/", auth=False)
    assert answer.json == {"return": "Welcome", "clients": sorted(["local", "local_async", "local_batch",
                                                                   "local_subset", "runner", "runner_async", "wheel"])}
    assert "Server" not in answer.headers and answer.headers["X-Content-Type-Options"] == "nosniff"
    html = site.api.call("GET", "/", auth=False, headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert html.status == 200 and html.body.startswith(b"<!doctype html>")
    assert html.headers["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("content_type,body", [
    ("application/json", b'{"username": "alice", "password": "%s", "eauth": "file"}'),
    ("application/x-yaml", b"username: alice\npassword: '%s'\neauth: file\n"),
    ("application/x-www-form-urlencoded", b"username=alice&password=%s&eauth=file"),
])
def test_login_in_json_yaml_and_form(site, content_type, body):
    answer = site.api.call("POST", "/login", raw=body.replace(b"%s", ALICE.encode()), content_type=content_type,
                           auth=False)
    assert answer.status == 200, answer.body
    entry = answer.json["return"][0]
    assert set(entry) == {"token", "expire", "start", "user", "eauth", "perms"}
    assert (entry["user"], entry["eauth"], entry["perms"]) == ("alice", "file", [".*", "@runner", "@wheel"])
    assert entry["expire"] - entry["start"] == pytest.approx(site.cfg.token_expire)
    assert answer.headers["X-Auth-Token"] == entry["token"]
    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith(f"session_id={entry['token']};") and "HttpOnly" in cookie and "SameSite=Strict" in cookie


def test_local_test_ping_and_its_audit_lines(site):
    answer = site.api.call("POST", "/", [{"client": "local", "tgt": "*", "fun": "test.ping"}])
    assert answer.status == 200 and answer.json == {"return": [{"m1": True, "m2": True}]}
    publish = site.audited(action="publish", fun="test.ping")
    assert (publish["user"], publish["eauth"], publish["outcome"], publish["source"]) == \
        ("alice", "file", "allowed", "127.0.0.1")
    api = site.audited(action="api", method="POST", path="/", clients="local")
    assert (api["user"], api["status"], api["fun"], api["outcome"]) == ("alice", 200, "test.ping", "allowed")


def test_several_chunks_full_return_yaml_answers_and_test_version_providers(site):
    answer = site.api.call("POST", "/", [
        {"client": "local", "tgt": "m1", "fun": "test.version", "full_return": True},
        {"client": "local", "tgt": "m2", "fun": "test.providers"},
        {"client": "local", "tgt": "m1,m2,ghost", "tgt_type": "list", "fun": "test.echo", "arg": "hi"},
    ], headers={"Accept": "application/x-yaml"})
    assert answer.status == 200 and answer.headers["Content-Type"] == "application/x-yaml"
    version, providers, echo = yaml.safe_load(answer.body)["return"]
    assert version["m1"]["retcode"] == 0 and isinstance(version["m1"]["ret"], str) and version["m1"]["jid"]
    assert providers["m2"]["test"] == "test"
    assert echo["m1"] == echo["m2"] == "hi" and echo["ghost"].startswith("Minion did not return")


def test_local_async_then_the_job(site):
    answer = site.api.call("POST", "/", [{"client": "local_async", "tgt": "*", "fun": "test.arg",
                                          "arg": ["a", "n=1"]}])
    pub = answer.json["return"][0]
    assert set(pub) == {"jid", "minions"} and pub["minions"] == ["m1", "m2"]

    def done() -> dict | None:
        job = site.api.call("GET", f"/jobs/{pub['jid']}").json
        return job if len(job["return"][0]) == 2 else None
    job = wait_for(done, what="both returns in /jobs/<jid>")
    info = job["info"][0]
    assert (info["jid"], info["Function"], info["Target"], info["User"]) == (pub["jid"], "test.arg", "*", "file:alice")
    assert info["Result"]["m1"]["retcode"] == 0
    assert job["return"][0]["m2"] == {"args": ["a"], "kwargs": {"n": 1}}
    listed = site.api.call("GET", "/jobs?search_function=test.arg").json["return"][0]
    assert list(listed) == [pub["jid"]] and listed[pub["jid"]]["Function"] == "test.arg"


def test_runner_client_jobs_list_jobs_list_job_and_cache_grains(site):
    jid = site.api.call("POST", "/", [{"client": "local_async", "tgt": "m1", "fun": "test.ping"}]).json["return"][0][
        "jid"]
    answer = site.api.call("POST", "/", [
        {"client": "runner", "fun": "jobs.list_jobs", "search_function": "test.ping"},
        {"client": "runner", "fun": "jobs.list_job", "arg": [jid]},
        {"client": "runner", "fun": "cache.grains", "tgt": "m*", "full_return": True},
    ])
    assert answer.status == 200, answer.body
    listed, one, grains = answer.json["return"]
    assert jid in listed and listed[jid]["Target"] == "m1"
    assert one["jid"] == jid and one["Function"] == "test.ping" and one["Minions"] == ["m1"] and "Result" in one
    assert grains["data"]["fun"] == "runner.cache.grains" and grains["data"]["success"] is True
    assert set(grains["data"]["return"]) == {"m1", "m2"} and grains["data"]["return"]["m2"]["id"] == "m2"


def test_runner_async_is_a_job_of_the_user(site):
    answer = site.api.call("POST", "/", [{"client": "runner_async", "fun": "jobs.list_jobs", "kwarg": {"limit": 1}}])
    started = answer.json["return"][0]
    assert set(started) == {"tag", "jid"} and started["tag"] == f"rx/job/{started['jid']}"

    def returned() -> dict | None:
        job = site.api.call("GET", f"/jobs/{started['jid']}").json
        return job if job["return"][0] else None
    job = wait_for(returned, what="the runner job's return")
    assert job["info"][0]["User"] == "file:alice" and job["info"][0]["Function"] == "jobs.list_jobs"


def test_local_batch_and_subset(site):
    answer = site.api.call("POST", "/", [
        {"client": "local_batch", "tgt": "*", "fun": "test.ping", "batch": "1"},
        {"client": "local_subset", "tgt": "*", "fun": "test.ping", "subset": 1},
    ])
    assert answer.status == 200, answer.body
    *batch, subset = answer.json["return"]
    assert sorted(batch, key=lambda d: list(d)) == [{"m1": True}, {"m2": True}]
    assert list(subset.values()) == [True] and set(subset) < {"m1", "m2"}


def test_minions_from_the_grains_cache_and_a_job_through_minions(site):
    every = site.api.call("GET", "/minions").json["return"][0]
    assert set(every) == {"m1", "m2"} and every["m1"]["id"] == "m1" and "os" in every["m2"]
    assert set(site.api.call("GET", "/minions/m2").json["return"][0]) == {"m2"}
    answer = site.api.call("POST", "/minions", [{"tgt": "m2", "fun": "test.ping"}])
    assert answer.status == 202
    job = answer.json["return"][0]
    assert job["minions"] == ["m2"] and answer.json["_links"] == {"jobs": [{"href": f"/jobs/{job['jid']}"}]}


def test_keys_wheel_list_all_and_accepting_a_pending_minion(site):
    box = site.box
    box.start_minion("m3", accept=False, wait=False)
    wait_for(lambda: "m3" in site.api.call("GET", "/keys").json["return"]["minions_pre"], what="m3's pending key")
    listing = site.api.call("POST", "/", [{"client": "wheel", "fun": "key.list_all"}]).json["return"][0]
    assert listing["tag"].startswith("rx/wheel/") and listing["data"]["fun"] == "wheel.key.list_all"
    assert listing["data"]["user"] == "file:alice" and listing["data"]["success"] is True
    assert listing["data"]["return"]["minions"] == ["m1", "m2"] and listing["data"]["return"]["minions_pre"] == ["m3"]
    finger = site.api.call("GET", "/keys/m3").json["return"]
    assert list(finger) == ["minions_pre"] and re.fullmatch(r"([0-9a-f]{2}:){31}[0-9a-f]{2}", finger["minions_pre"]["m3"])
    accepted = site.api.call("POST", "/keys/m3", {"action": "accept"})
    assert accepted.status == 200 and accepted.json == {"return": {"minions": ["m3"]}}

    def pings() -> bool:
        ret = site.api.call("POST", "/", [{"client": "local", "tgt": "m3", "fun": "test.ping", "timeout": 2}])
        return ret.status == 200 and ret.json["return"][0].get("m3") is True
    wait_for(pings, DEADLINE * 2, what="m3 to answer once its key was accepted through rx-api")


def test_the_hook_fires_an_event_on_the_masters_bus(site):
    with EventWatch(site.cfg, "rx/netapi/hook/") as watch:
        answer = site.api.call("POST", "/hook/ci/build/done", {"revision": "aa22a3", "ok": True},
                               headers={"X-Ci-Secret": "shh"})
        assert answer.status == 200 and answer.json == {"success": True}
        event = watch.next(DEADLINE)
    assert event is not None
    tag, data = event
    assert tag == "rx/netapi/hook/ci/build/done"
    assert data["post"] == {"revision": "aa22a3", "ok": True} and json.loads(data["body"]) == data["post"]
    assert data["headers"]["X-Ci-Secret"] == "shh"
    assert not {"X-Auth-Token", "Cookie", "Authorization"} & set(data["headers"])


def test_stats_and_metrics(site):
    stats = site.api.call("GET", "/stats").json["rx-api"]
    assert stats["Requests"] > 5 and stats["Requests by client"]["local"] >= 1 and stats["Logins"]["ok"] >= 1
    metrics = site.api.call("GET", "/metrics")
    assert metrics.status == 200 and metrics.headers["Content-Type"].startswith("text/plain")
    assert b'rx_jobs_published_total{fun="test.ping"}' in metrics.body
    assert site.api.call("GET", "/metrics", auth=False).status == 401


def test_run_takes_credentials_in_the_chunk(site):
    inline = site.api.call("POST", "/run", [{"client": "local", "tgt": "m1", "fun": "test.ping", "username": "bob",
                                             "password": BOB, "eauth": "file"}], auth=False)
    assert inline.status == 200 and inline.json == {"return": [{"m1": True}]}
    site.audited(action="api", path="/run", user="bob", status=200)
    lines = site.audit()
    login = max(i for i, e in enumerate(lines) if e["action"] == "login" and e["user"] == "bob")
    assert any(e["action"] == "logout" and e["user"] == "bob" and e["outcome"] == "allowed" for e in lines[login:])
    by_token = site.api.call("POST", "/run", [{"client": "local", "tgt": "m2", "fun": "test.ping",
                                               "token": site.api.token}], auth=False)
    assert by_token.json == {"return": [{"m2": True}]}


def test_pepper_runs_test_ping_against_rx_api(site, tmp_path):
    env = {**os.environ, "HOME": str(tmp_path)}
    pepper = Path(sys.executable).parent / "pepper"
    if not pepper.exists():
        pytest.skip("pepper is not installed (pip install -e '.[test]' installs salt-pepper)")
    done = subprocess.run([str(pepper), f"--saltapi-url={site.api.url}", "--username", "alice", "--password", ALICE,
                           "-a", "file", "--non-interactive", "*", "test.ping"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    answers = json.loads(done.stdout)["return"][0]
    accepted = site.api.call("GET", "/keys").json["return"]["minions"]  # m1, m2 (and m3 once its test ran)
    assert {m: a["ret"] for m, a in answers.items()} == {m: True for m in accepted}
    run_uri = subprocess.run([str(pepper), f"--saltapi-url={site.api.url}", "--username", "bob", "--password", BOB,
                              "-a", "file", "--non-interactive", "--run-uri", "m1", "test.ping"],
                             capture_output=True, text=True, env=env, timeout=120)  # /token, then /run
    assert run_uri.returncode == 0, run_uri.stderr
    assert json.loads(run_uri.stdout)["return"][0]["m1"]["ret"] is True


def test_logout_then_the_token_is_refused(site):
    user = site.user("alice", ALICE)
    assert user.call("GET", "/keys").status == 200
    out = user.call("POST", "/logout")
    assert out.status == 200 and out.json == {"return": "Your token has been cleared"}
    refused = user.call("GET", "/keys")
    assert refused.status == 401 and refused.json["status"] == 401 and "revoked" in refused.json["return"]


def test_rx_api_detaches_with_d_logs_to_its_file_and_stops_on_sigterm(site, tmp_path):
    conf = other_config(site.box, tmp_path)
    cfg = load_master(conf)
    script = Path(sys.executable).parent / "rx-api"
    argv = [str(script)] if script.exists() else [sys.executable, "-m", "rx.api.daemon"]
    daemon = Daemon.detach("rx-api", [*argv, "-c", str(conf)], cfg.api_pidfile, Path(cfg.api_log_file))
    other = ApiServer(site.box, cfg.api_port, daemon)
    try:
        def answers() -> bool:
            try:
                return other.call("GET", "/", auth=False).status == 200
            except OSError:  # the pidfile comes before the port
                return False
        wait_for(answers, what="the detached rx-api")
        assert "rx-api" in Path(cfg.api_log_file).read_text() and "ready" in Path(cfg.api_log_file).read_text()
    finally:
        daemon.stop()
    wait_for(lambda: not Path(cfg.api_pidfile).exists(), what="rx-api to remove its pidfile")
