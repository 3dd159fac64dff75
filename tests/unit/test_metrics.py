"""The master's metrics without daemons: the per-process recorders, the bound on `fun` labels (shared by
processes through one file), the snapshots, folding a dead process's counts, the exposition, and
docs/metrics.md."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from rx.master.metrics import catalog as c
from rx.master.metrics.exposition import render
from rx.master.metrics.process import EventBusMetrics, SupervisorMetrics, WorkerMetrics, return_outcome
from rx.master.metrics.recorder import FunLabels, Histogram, Recorder, jid_time
from rx.master.metrics.shared import Totals, fold, read_totals, reset, snapshot_path, write_snapshot
from rx.transport.ids import new_jid
from rx.transport.jidclock import JidClock
from rx.transport.messages import JobReturn

ROOT = Path(__file__).resolve().parents[2]


def samples(text: bytes) -> dict[tuple[str, frozenset], float]:
    """{(sample name, labels): value} of a text exposition (parsed by prometheus_client's own parser)."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for fam in text_string_to_metric_families(text.decode()) for s in fam.samples}


def ret(fun="test.ping", jid=None, success=True, retcode=0, start=None, end=None) -> JobReturn:
    return JobReturn(jid=jid or new_jid(), fun=fun, fun_args=[], retcode=retcode, success=success, ret=True,
                     start_time=start, end_time=end)


def test_docs_metrics_md_is_up_to_date():
    assert (ROOT / "docs" / "metrics.md").read_text() == c.reference_markdown(), \
        "docs/metrics.md is out of date: run `make docs`"


def test_every_metric_is_documented_with_its_labels():
    doc = c.reference_markdown()
    for spec in c.SPECS:
        assert spec.name.startswith("rx_") and f"`{spec.name}`" in doc
        for label in spec.labels:
            assert label in spec.values, f"{spec.name}: label {label} has no documented values"
        assert not {"jid", "id", "minion", "minion_id"} & set(spec.labels)


@pytest.mark.parametrize("value, bucket", [(0.0, 0), (0.0001, 0), (0.00011, 1), (5.0, 14), (5.1, 15), (1e9, 15)])
def test_a_histogram_bucket_holds_values_up_to_its_bound(value, bucket):
    h = Histogram(c.LATENCY_BUCKETS)
    h.observe(value)
    assert h.counts.index(1) == bucket and h.total == value


@pytest.mark.parametrize("fun, label", [
    ("test.ping", "test.ping"),
    (["test.ping"], "test.ping"),
    (["test.ping", "cmd.run"], c.COMPOUND),
    ("a." + "b" * c.MAX_FUN_LABEL_CHARS, c.OTHER),
    ("other", c.OTHER),
    ("compound", c.OTHER),
])
def test_fun_labels(fun, label):
    assert FunLabels()(fun) == label


def test_fun_labels_are_bounded_in_memory():
    labels = FunLabels(cap=3)
    assert [labels(f"m.f{i}") for i in range(5)] == ["m.f0", "m.f1", "m.f2", c.OTHER, c.OTHER]
    assert labels("m.f1") == "m.f1"


def test_fun_labels_are_bounded_across_processes(tmp_path):
    """Two workers share one list: together they give at most `cap` names a label, the first ones seen."""
    a, b = FunLabels(str(tmp_path), cap=4), FunLabels(str(tmp_path), cap=4)
    assert [a("m.a1"), a("m.a2"), b("m.b1")] == ["m.a1", "m.a2", "m.b1"]
    assert b("m.a1") == "m.a1"
    assert a("m.b2") == "m.b2"  # the fourth and last
    assert [b("m.b3"), a("m.a3"), b("m.b2")] == [c.OTHER, c.OTHER, "m.b2"]
    assert sorted((tmp_path / "funs").read_text().split()) == ["m.a1", "m.a2", "m.b1", "m.b2"]
    late = FunLabels(str(tmp_path), cap=4)
    assert [late("m.b1"), late("m.zz")] == ["m.b1", c.OTHER]


def test_fun_labels_read_the_shared_list_no_more_once_it_is_full(tmp_path):
    labels = FunLabels(str(tmp_path), cap=2)
    labels("m.a"), labels("m.b")
    (tmp_path / "funs").unlink()  # would be re-created if it were read again
    assert labels("m.c") == c.OTHER and not (tmp_path / "funs").exists()


def test_jid_time_keeps_a_bounded_cache():
    """A worker reads the time of every return's jid: its cache of seconds must not grow with uptime (the
    reliability soak found a worker's RSS growing by it)."""
    from rx.master.metrics import recorder
    for n in range(10 * recorder._SECONDS_KEPT):
        assert jid_time(new_jid(1_700_000_000 + n)) == pytest.approx(1_700_000_000 + n, abs=1e-4)
        assert len(recorder._SECONDS) <= recorder._SECONDS_KEPT


def test_jid_time_reads_both_kinds_of_jid():
    assert jid_time(JidClock(None, 7).next(now=1_700_000_000.1234)) == pytest.approx(1_700_000_000.1234, abs=1e-4)
    assert jid_time(new_jid(1_700_000_000.5)) == pytest.approx(1_700_000_000.5, abs=1e-4)
    assert jid_time("99999999999999999999") is None
    assert jid_time("20241399000000000000") is None


def test_a_worker_counts_publishes_and_returns_by_outcome():
    m = WorkerMetrics()
    m.published("test.ping", 3)
    m.published(["a.b", "c.d"], 0)
    now = new_jid()
    m.returned(ret(jid=now, start=10.0, end=10.5), return_outcome(ret()))
    m.returned(ret(success=False, retcode=1), return_outcome(ret(success=False, retcode=1)))
    m.returned(ret(retcode=2), return_outcome(ret(retcode=2)))
    m.returned(ret(), "duplicate")
    assert m.counters["rx_jobs_published_total"] == {("test.ping",): 1, ("compound",): 1}
    assert m.counters["rx_job_minions_expected_total"] == {("test.ping",): 3, ("compound",): 0}
    assert m.counters["rx_returns_total"] == {("test.ping", "success"): 1, ("test.ping", "failed"): 2,
                                             ("test.ping", "duplicate"): 1}
    duration = m.histograms["rx_job_duration_seconds"][()]
    assert sum(duration.counts) == 1 and duration.total == 0.5
    assert sum(m.histograms["rx_return_latency_seconds"][()].counts) == 3  # stored ones only
    assert sum(m.histograms["rx_job_expected_minions"][()].counts) == 2


def test_snapshots_are_written_only_when_they_change(tmp_path):
    r = Recorder(str(tmp_path), "mworker-0")
    path = Path(snapshot_path(str(tmp_path), "mworker-0", os.getpid()))
    r.flush()
    first = path.stat().st_mtime_ns, path.stat().st_ino
    r.flush()
    assert (path.stat().st_mtime_ns, path.stat().st_ino) == first
    r.inc("rx_event_bus_dropped_total", amount=2)
    r.flush()
    assert path.stat().st_ino != first[1]
    assert read_totals(str(tmp_path)).counters["rx_event_bus_dropped_total"] == {(): 2}


def _write(directory: str, name: str, pid: int, published: int) -> None:
    """The snapshot a worker `name` with `pid` would have written after publishing `published` jobs."""
    m = WorkerMetrics()
    for _ in range(published):
        m.published("test.ping", 1)
    m.lanes["sealed"].observe(0.001)
    write_snapshot(snapshot_path(directory, name, pid), m.snapshot())


def test_the_supervisor_counts_a_restart_and_folds_the_dead_childs_counts(tmp_path):
    d = str(tmp_path)
    reset(d)
    sup = SupervisorMetrics(d, ["mworker-0", "mworker-1"])
    _write(d, "mworker-0", 101, 2)
    _write(d, "mworker-1", 102, 3)
    before = read_totals(d)
    sup.died("mworker-0", 101)
    after = read_totals(d)
    assert after.counters["rx_jobs_published_total"] == before.counters["rx_jobs_published_total"] == {
        ("test.ping",): 5}
    assert after.counters["rx_master_child_restarts_total"] == {("mworker-0",): 1, ("mworker-1",): 0}
    assert sorted(os.listdir(d)) == [".lock", "mworker-1.102.snap", "retired.snap", f"supervisor.{os.getpid()}.snap"]


def test_folding_adds_into_the_retired_counts(tmp_path):
    d = str(tmp_path)
    reset(d)
    _write(d, "mworker-0", 101, 1)
    _write(d, "mworker-0", 102, 1)
    assert read_totals(d).counters["rx_jobs_published_total"] == {("test.ping",): 2}
    fold(d, "mworker-0", 101)
    fold(d, "mworker-0", 102)
    fold(d, "mworker-0", 103)  # nothing to fold
    totals = read_totals(d)
    assert totals.counters["rx_jobs_published_total"] == {("test.ping",): 2}
    assert sum(totals.histograms["rx_request_seconds"][("sealed",)][0]) == 2
    assert sorted(os.listdir(d)) == [".lock", "retired.snap"]


def test_totals_skip_entries_of_another_shape():
    t = Totals()
    t.add({"c": [["rx_x_total", [], 1], ["bad"], None], "h": [["rx_h", [], [1, 2], 0.5], ["rx_h", [], [1], 1.0]]})
    t.add("not a snapshot")
    assert t.counters == {"rx_x_total": {(): 1.0}} and t.histograms == {"rx_h": {(): [[1, 2], 0.5]}}


def test_the_exposition_has_every_metric_with_fixed_labels_at_zero():
    m = WorkerMetrics()
    m.returned(ret(jid=new_jid(), start=1.0, end=1.2), "success")
    totals = Totals()
    totals.add(m.snapshot())
    bus = EventBusMetrics(None)
    bus.dropped(3)
    totals.add(bus.snapshot())
    got = samples(render(totals, {"rx_keys": {("accepted",): 2}, "rx_master_up": {(): 1.0}}))
    assert got[("rx_returns_total", frozenset({("fun", "test.ping"), ("outcome", "success")}))] == 1
    assert got[("rx_event_bus_dropped_total", frozenset())] == 3
    assert got[("rx_keys", frozenset({("state", "accepted")}))] == 2
    assert got[("rx_keys", frozenset({("state", "denied")}))] == 0
    assert got[("rx_minions_connected", frozenset())] == 0
    assert got[("rx_auth_attempts_total", frozenset({("outcome", "invalid")}))] == 0
    assert got[("rx_job_duration_seconds_bucket", frozenset({("le", "0.1")}))] == 0
    assert got[("rx_job_duration_seconds_bucket", frozenset({("le", "0.25")}))] == 1
    assert got[("rx_job_duration_seconds_bucket", frozenset({("le", "+Inf")}))] == 1
    assert got[("rx_job_duration_seconds_count", frozenset())] == 1
    assert got[("rx_request_seconds_count", frozenset({("lane", "clear")}))] == 0
    names = {fam.name for fam in text_string_to_metric_families(render(Totals(), {}).decode())}
    assert names == {s.name.removesuffix("_total") for s in c.SPECS if not s.optional}  # no counter of bus drops


def test_the_minion_and_the_clients_do_not_load_prometheus_client():
    """Only the master's metrics process imports it (rx.master.metrics.exposition)."""
    code = ("import sys, rx.minion.daemon, rx.minion.executor, rx.client.cli, rx.client.local, rx.master.daemon, "
            "rx.master.mworker, rx.master.eventpub; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('prometheus_client', 'tornado')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
