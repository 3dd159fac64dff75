"""Prometheus metrics on real daemons: /metrics of a running master (`metrics_port`) scraped before and after
jobs, the counters moved by exactly what was done; a killed MWorker counted as a restart with none of its
counts lost; the bound on `fun` label values across the workers; events a subscriber that never reads
misses counted by the event publisher, with the bus still serving the others."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import urllib.error
import urllib.request

import pytest
import zmq
from prometheus_client.parser import text_string_to_metric_families

from rx.client.local import AsyncLocalClient, LocalClient
from rx.master.metrics.catalog import MAX_FUN_LABELS, OTHER
from rx.master.metrics.exposition import MetricsSource
from tests.integration.conftest import EventWatch, FakeMinion
from tests.support.procs import free_port, wait_for
from tests.support.sandbox import master_child

Samples = dict[tuple[str, frozenset], float]


def parse(text: bytes) -> Samples:
    return {(s.name, frozenset(s.labels.items())): s.value
            for fam in text_string_to_metric_families(text.decode()) for s in fam.samples}


def scrape(port: int) -> Samples:
    """GET /metrics, parsed (waiting for rx-metrics to listen: the master is ready before it)."""
    def get() -> bytes | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
                assert r.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
                return r.read()
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, ConnectionRefusedError):
                return None
            raise
    return parse(wait_for(get, what=f"rx-metrics listening on port {port}"))


def val(got: Samples, name: str, **labels: str) -> float:
    return got.get((name, frozenset(labels.items())), 0.0)


def delta(after: Samples, before: Samples, name: str, **labels: str) -> float:
    return val(after, name, **labels) - val(before, name, **labels)


@pytest.fixture
def metered(sandbox):
    """A master serving /metrics on a free port, with minions m1 and m2."""
    sandbox.master_overrides["metrics_port"] = free_port()
    sandbox.start_master()
    sandbox.start_minion("m1")
    sandbox.start_minion("m2")
    return sandbox


def test_scraped_counters_move_by_what_the_jobs_did(metered):
    port = metered.cfg.metrics_port
    got = wait_for(lambda: (s := scrape(port)) and val(s, "rx_minions_connected") == 2
                   and val(s, "rx_auth_attempts_total", outcome="accepted") >= 2 and s,
                   what="both minions connected and their auth counted in /metrics")
    assert val(got, "rx_master_up") == 1
    assert val(got, "rx_keys", state="accepted") == 2 and val(got, "rx_keys", state="pending") == 0
    before = scrape(port)  # before the stranger's auth: a worker's counts reach /metrics within a second, maybe before
    stranger = FakeMinion(metered, "stranger", accept=False)
    try:
        assert stranger.auth() == "pending"
    finally:
        stranger.close()
    with LocalClient(cfg=metered.cfg) as c:
        for _ in range(3):
            assert c.cmd("*", "test.ping") == {"m1": True, "m2": True}
        failed = c.cmd("*", "test.exception", ["boom"], full_return=True)
    assert {m: r["retcode"] for m, r in failed.items()} == {"m1": 1, "m2": 1}
    after = wait_for(lambda: (s := scrape(port)) and delta(s, before, "rx_returns_total", fun="test.exception",
                                                          outcome="failed") >= 2
                     and delta(s, before, "rx_auth_attempts_total", outcome="pending") >= 1 and s,
                     what="the failed returns and the stranger's auth counted in /metrics")
    assert delta(after, before, "rx_jobs_published_total", fun="test.ping") == 3
    assert delta(after, before, "rx_jobs_published_total", fun="test.exception") == 1
    assert delta(after, before, "rx_job_minions_expected_total", fun="test.ping") == 6
    assert delta(after, before, "rx_job_minions_expected_total", fun="test.exception") == 2
    assert delta(after, before, "rx_returns_total", fun="test.ping", outcome="success") == 6
    assert delta(after, before, "rx_returns_total", fun="test.exception", outcome="failed") == 2
    assert delta(after, before, "rx_returns_total", fun="test.ping", outcome="failed") == 0
    assert delta(after, before, "rx_auth_attempts_total", outcome="pending") == 1
    assert val(after, "rx_keys", state="pending") == 1
    probes = delta(after, before, "rx_jobs_published_total", fun="jobs.find")
    probe_returns = sum(delta(after, before, "rx_returns_total", fun="jobs.find", outcome=o) for o in ("success",
                                                                                                       "failed"))
    assert delta(after, before, "rx_job_expected_minions_count") == 4 + probes
    assert delta(after, before, "rx_job_expected_minions_bucket", le="1.0") == 0  # every job expected two
    assert delta(after, before, "rx_return_latency_seconds_count") == 8 + probe_returns
    assert delta(after, before, "rx_job_duration_seconds_count") == 8 + probe_returns
    assert delta(after, before, "rx_job_store_write_seconds_count", op="create_job") == 4 + probes
    assert delta(after, before, "rx_job_store_write_seconds_count", op="store_return") == 8 + probe_returns
    assert delta(after, before, "rx_request_seconds_count", lane="local") >= 4
    assert delta(after, before, "rx_request_seconds_count", lane="sealed") >= 8
    assert delta(after, before, "rx_master_child_restarts_total", child="mworker-0") == 0
    assert master_child(metered.master.pid, "metrics") is not None


def test_a_killed_worker_is_counted_as_a_restart_and_loses_no_counts(metered):
    port = metered.cfg.metrics_port
    with LocalClient(cfg=metered.cfg) as c:
        for _ in range(2):
            assert c.cmd("*", "test.ping") == {"m1": True, "m2": True}
    returned = lambda s: val(s, "rx_returns_total", fun="test.ping", outcome="success")  # noqa: E731
    got = wait_for(lambda: (s := scrape(port)) and returned(s) == 4 and s, what="four returns in /metrics")
    assert val(got, "rx_master_child_restarts_total", child="mworker-0") == 0
    victim = master_child(metered.master.pid, "mworker-0")
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: master_child(metered.master.pid, "mworker-0") not in (None, victim), what="mworker-0 restarted")
    got = wait_for(lambda: (s := scrape(port)) and val(s, "rx_master_child_restarts_total", child="mworker-0") == 1
                   and s, what="the restart in /metrics")
    assert val(got, "rx_master_child_restarts_total", child="mworker-1") == 0
    assert val(got, "rx_master_child_restarts_total", child="publisher") == 0
    assert val(got, "rx_jobs_published_total", fun="test.ping") == 2 and returned(got) == 4
    with LocalClient(cfg=metered.cfg) as c:
        assert c.cmd("*", "test.ping") == {"m1": True, "m2": True}
    got = wait_for(lambda: (s := scrape(port)) and returned(s) == 6 and s, what="the next job's returns counted")
    assert val(got, "rx_jobs_published_total", fun="test.ping") == 3
    assert sorted(os.listdir(os.path.join(metered.cfg.sock_dir, "metrics"))).count("retired.snap") == 1


async def _publish_to_nobody(cfg) -> str:
    """A job's jid even when it matched no minion (the sync client answers 0 then, as Salt's cmd_async)."""
    async with AsyncLocalClient(cfg=cfg) as c:
        return await c.cmd_async("nobody", "test.ping", tgt_type="list")


def test_function_labels_are_bounded_across_the_workers(sandbox):
    port = free_port()
    sandbox.start_master(metrics_port=port)
    extra = 3
    funs = [f"nosuch.fun{i}" for i in range(MAX_FUN_LABELS + extra)]
    with LocalClient(cfg=sandbox.cfg) as c:
        for fun in [*funs, funs[0], funs[-1]]:
            assert c.run_job("nobody", fun, tgt_type="list") == {}  # Salt's run_job when nothing matched
    total = len(funs) + 2
    got = wait_for(lambda: (s := scrape(port)) and sum(
        v for (name, _), v in s.items() if name == "rx_jobs_published_total") == total and s,
        what=f"{total} jobs in /metrics")
    labels = {dict(lb)["fun"]: v for (name, lb), v in got.items() if name == "rx_jobs_published_total"}
    assert len(labels) == MAX_FUN_LABELS + 1
    assert set(labels) == {*funs[:MAX_FUN_LABELS], OTHER}  # the first ones seen, whichever worker saw them
    assert labels[OTHER] == extra + 1 and labels[funs[0]] == 2
    assert all(val(got, "rx_job_minions_expected_total", fun=f) == 0 for f in labels)


def test_the_port_is_off_by_default_and_a_busy_one_stops_the_start(sandbox):
    sandbox.start_master()
    assert sandbox.cfg.metrics_port == 0 and master_child(sandbox.master.pid, "metrics") is None
    source = MetricsSource(sandbox.cfg)
    try:
        got = parse(asyncio.run(source.render()))
    finally:
        source.close()
    assert val(got, "rx_master_up") == 1
    assert ("rx_event_bus_dropped_total", frozenset()) not in got  # not counted unless metrics_event_drops
    sandbox.stop_master()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        sandbox.write_master_config(metrics_port=s.getsockname()[1])
        p = subprocess.run([*sandbox.command("rx-master"), "-c", str(sandbox.master_dir)], capture_output=True,
                           text=True, timeout=60)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert "metrics_port" in p.stderr and "already in use" in p.stderr and "Traceback" not in p.stderr


def test_events_a_subscriber_never_reads_are_counted_as_dropped_and_the_bus_still_serves(sandbox):
    """Read in this process as rx-api would (MetricsSource), without the metrics port."""
    sandbox.start_master(metrics_event_drops=True)
    cfg = sandbox.cfg
    source = MetricsSource(cfg)
    dropped = lambda: parse(asyncio.run(source.render())).get(("rx_event_bus_dropped_total", frozenset()))  # noqa
    assert dropped() == 0
    ctx = zmq.Context()
    sleeper = ctx.socket(zmq.SUB)
    sleeper.setsockopt(zmq.RCVHWM, 1)
    sleeper.setsockopt(zmq.RCVBUF, 4096)
    sleeper.setsockopt(zmq.SUBSCRIBE, b"rx/test/")
    sleeper.connect(f"ipc://{cfg.event_pub_ipc}")
    push = ctx.socket(zmq.PUSH)
    push.connect(f"ipc://{cfg.event_pull_ipc}")
    try:
        sent = 0
        while not dropped():
            assert sent < 1_000_000, "a million events to a subscriber that never reads, and none dropped"
            for _ in range(50_000):
                push.send_multipart([b"rx/test/flood", b"\x80"])
            sent += 50_000
            try:
                wait_for(dropped, timeout=3, what="drops")
            except AssertionError:
                continue
        assert 0 < dropped() <= sent
        with EventWatch(cfg, "rx/job/") as watch:
            jid = asyncio.run(_publish_to_nobody(cfg))
            tag, _data = watch.next(match=lambda t: t.startswith(f"rx/job/{jid}/new"))
        assert tag == f"rx/job/{jid}/new"
    finally:
        sleeper.close(linger=0)
        push.close(linger=0)
        ctx.term()
        source.close()
    assert "child event-publisher" not in sandbox.master.output()  # it never died


def test_nothing_but_metrics_is_served(sandbox):
    port = free_port()
    sandbox.start_master(metrics_port=port)
    assert val(scrape(port), "rx_master_up") == 1
    for path in ("/", "/metrics/../etc/passwd", "/nope"):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10)
        assert err.value.code == 404
    req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", data=b"x" * 100, method="POST")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.code in (400, 405, 413)
