"""The `reliability` section of `python -m bench`: issue #9's figures, from faults done to real daemons.

  recovery   seconds from starting rx-master again (after SIGTERM, or kill -9 of the supervisor: its
             children follow it) until every real minion answers `test.ping`
  faults     jobs streamed to the minions while each master child in turn (and the supervisor) is
             killed with SIGKILL: returns expected for the jobs the master accepted, returns stored, lost
  soak       a constant `test.ping` load for S seconds: every MWorker's RSS sampled; growth from the end
             of the warm-up (the first quarter) to the end, and per hour over the second half (steady state)
"""

from __future__ import annotations

import os
import signal
import statistics
import threading
import time
from typing import Any, Callable

from rx.client.local import LocalClient
from rx.client.results import MasterUnreachable
from tests.support.procs import children_of, comm, is_running, rss_kb, wait_for
from tests.support.sandbox import master_child, stored_returns

from .sandbox import BenchSandbox

CHILDREN = ("publisher", "event-publisher", "request-server", "mworker-0", "maintenance")
STREAM_JOBS = 30
SAMPLE_EVERY = 5.0




def _all_answer(box: BenchSandbox, ids: list[str]) -> bool:
    """Whether every minion answers a ping; False while the master is not up yet (after a kill -9 its old
    sockets are still on disk until the new master replaces them, so "ready" can come early)."""
    try:
        with LocalClient(cfg=box.cfg) as c:
            return c.cmd("*", "test.ping", timeout=2) == {m: True for m in ids}
    except MasterUnreachable:
        return False


def _recovery(box: BenchSandbox, ids: list[str], how: str) -> float:
    """Stop the master (`sigterm`, or `kill9` of the supervisor alone), start it, time until all answer."""
    if how == "kill9":
        kids = children_of(box.master.pid)
        os.kill(box.master.pid, signal.SIGKILL)
        wait_for(lambda: not any(is_running(p) for p in kids), timeout=30, what="the children to follow")
    box.master.stop()
    t0 = time.perf_counter()
    box.start_master()
    wait_for(lambda: _all_answer(box, ids), timeout=120, interval=0.05, what="every minion answering")
    return time.perf_counter() - t0


def _stream(box: BenchSandbox, fault: Callable[[], None]) -> tuple[list[str], int]:
    """Publish STREAM_JOBS pings, calling `fault` after the first third; (accepted jids, refused publishes)."""
    jids: list[str] = []
    refused = 0
    with LocalClient(cfg=box.cfg) as c:
        for i in range(STREAM_JOBS):
            if i == STREAM_JOBS // 3:
                fault()
            try:
                jids.append(c.run_job("*", "test.ping")["jid"])
            except Exception:  # the client was told; not the master's to keep
                refused += 1
                if not is_running(box.master.pid):
                    break
            time.sleep(0.02)
    return jids, refused


def _lost(box: BenchSandbox, jids: list[str], ids: list[str], deadline: float = 60.0) -> int:
    """Returns of `jids` not in the job store once `deadline` seconds have passed without all arriving."""
    end = time.monotonic() + deadline
    missing = len(jids) * len(ids)
    while time.monotonic() < end:
        missing = sum(len(ids) - sum(1 for m in ids if m in stored_returns(box.cfg, j)) for j in jids)
        if not missing:
            break
        time.sleep(0.5)
    return missing


def _faults(box: BenchSandbox, ids: list[str], say: Callable[[str], None]) -> dict:
    out = {}
    for name in (*CHILDREN, "supervisor"):
        def kill(name: str = name) -> None:
            pid = box.master.pid if name == "supervisor" else master_child(box.master.pid, name)
            if pid:
                os.kill(pid, signal.SIGKILL)
        jids, refused = _stream(box, kill)
        if name == "supervisor":
            box.master.stop()
            box.start_master()
        else:
            wait_for(lambda: master_child(box.master.pid, name), timeout=30, what=f"{name} back")
        lost = _lost(box, jids, ids)
        out[name] = {"accepted": len(jids), "refused": refused, "expected_returns": len(jids) * len(ids),
                     "lost": lost}
        say(f"reliability: {name} killed mid-stream: {len(jids)} jobs accepted ({refused} refused), "
            f"{lost} of {len(jids) * len(ids)} returns lost")
        wait_for(lambda: _all_answer(box, ids), timeout=60, what="every minion answering")
    return out


def _soak(box: BenchSandbox, ids: list[str], seconds: float, say: Callable[[str], None]) -> dict:
    workers = [p for p in children_of(box.master.pid) if comm(p).startswith("rx-mworker")]
    samples: list[tuple[float, list[int]]] = []
    stop = threading.Event()
    counts = {"jobs": 0, "short": 0}

    def load() -> None:
        with LocalClient(cfg=box.cfg) as c:
            while not stop.is_set():
                got = c.cmd("*", "test.ping", timeout=10)
                counts["jobs"] += 1
                counts["short"] += len(ids) - sum(1 for v in got.values() if v is True)
    t = threading.Thread(target=load, daemon=True)
    t0 = time.monotonic()
    t.start()
    while time.monotonic() - t0 < seconds:
        samples.append((time.monotonic() - t0, [rss_kb(p) for p in workers]))
        time.sleep(SAMPLE_EVERY)
    stop.set()
    t.join(30)
    samples.append((time.monotonic() - t0, [rss_kb(p) for p in workers]))
    warm = [s for s in samples if s[0] >= seconds / 4]
    late = [s for s in samples if s[0] >= seconds / 2]
    first, last = warm[0], warm[-1]
    worst, per_hour = _growth(first, last)
    _late_worst, late_per_hour = _growth(late[0], last)
    res = {"seconds": seconds, "workers": len(workers), "jobs": counts["jobs"], "returns_short": counts["short"],
           "rss_mb_start": [round(x / 1024, 1) for x in first[1]], "rss_mb_end": [round(x / 1024, 1) for x in last[1]],
           "growth_pct_max": 100 * worst, "growth_pct_per_hour_max": per_hour,
           "late_growth_pct_per_hour_max": late_per_hour,
           "series_mb": [[round(t), max(x for x in rss) / 1024] for t, rss in samples[::max(1, len(samples) // 12)]]}
    say(f"reliability: soak {seconds:.0f}s, {counts['jobs']} jobs, {counts['short']} returns short; MWorker RSS "
        f"{res['rss_mb_start']} -> {res['rss_mb_end']} MB (worst {res['growth_pct_max']:+.2f} %; second half "
        f"{late_per_hour:+.2f} %/h)")
    return res


def _growth(first: tuple[float, list[int]], last: tuple[float, list[int]]) -> tuple[float, float | None]:
    """The worst worker's growth between two samples, as a fraction and as percent per hour."""
    growth = [(b - a) / a for a, b in zip(first[1], last[1]) if a]
    hours = (last[0] - first[0]) / 3600
    worst = max(growth) if growth else 0.0
    return worst, (100 * worst / hours if hours else None)


def bench_reliability(minions: int, runs: int, soak_seconds: float, say: Callable[[str], None]) -> dict[str, Any]:
    """All of the section's figures, on one sandbox master with `minions` real rx-minion processes."""
    box = BenchSandbox()
    ids = [f"rel-{i:03d}" for i in range(minions)]
    res: dict[str, Any] = {"minions": minions}
    try:
        box.start_master()
        box.start_minions(ids)
        wait_for(lambda: _all_answer(box, ids), timeout=60, what="every minion answering")
        for how in ("sigterm", "kill9"):
            times = [_recovery(box, ids, how) for _ in range(runs)]
            res[f"recovery_{how}_s"] = statistics.median(times)
            res[f"recovery_{how}_runs_s"] = times
            say(f"reliability: {minions} minions answer {statistics.median(times):.2f}s after the master restarts "
                f"({how}; median of {runs})")
        res["faults"] = _faults(box, ids, say)
        res["soak"] = _soak(box, ids, soak_seconds, say)
    finally:
        box.close()
    return res


def target_rows(res: dict | None) -> list[dict]:
    """Issue #9's targets: no return lost to a killed master process; MWorker growth under 2 % an hour."""
    if not res:
        return [{"target": "no return lost when a master process is killed mid-stream", "measured": "not measured",
                 "met": None},
                {"target": "MWorker RSS growth under a constant load < 2 % per hour", "measured": "not measured",
                 "met": None}]
    lost = sum(f["lost"] for f in res.get("faults", {}).values())
    expected = sum(f["expected_returns"] for f in res.get("faults", {}).values())
    soak = res.get("soak", {})
    per_hour = soak.get("late_growth_pct_per_hour_max", soak.get("growth_pct_per_hour_max"))
    return [{"target": "no return lost when a master process is killed mid-stream",
             "measured": f"{lost} of {expected} lost", "met": lost == 0},
            {"target": "MWorker RSS growth under a constant load (steady state: the soak's second half) < 2 % per hour",
             "measured": "—" if per_hour is None else f"{per_hour:+.2f} %/h over the last {soak['seconds'] / 2:.0f}s "
                                                      f"(from the warm-up's end: {soak['growth_pct_per_hour_max']:+.2f} %/h)",
             "met": None if per_hour is None else per_hour < 2.0}]


def render(res: dict | None) -> list[str]:
    """The RESULTS.md section."""
    if not res:
        return []
    L = ["## Reliability (issue #9: faults done to real daemons)", "",
         f"{res['minions']} real rx-minion processes on one sandbox master; measured "
         f"{res.get('measured', {}).get('date', '?')} at commit `{res.get('measured', {}).get('commit', '?')}`.", "",
         "| Fault | Result |", "|---|---|"]
    for how, label in (("sigterm", "rx-master stopped (SIGTERM) and started"),
                       ("kill9", "rx-master's supervisor killed (kill -9; its children follow) and started")):
        if f"recovery_{how}_s" in res:
            runs = ", ".join(f"{x:.2f}" for x in res[f"recovery_{how}_runs_s"])
            L.append(f"| {label}: every minion answers after | {res[f'recovery_{how}_s']:.2f}s (runs: {runs}) |")
    for name, f in res.get("faults", {}).items():
        L.append(f"| {name} killed (SIGKILL) during a stream of {STREAM_JOBS} jobs: returns lost | {f['lost']} of "
                 f"{f['expected_returns']} ({f['accepted']} jobs accepted, {f['refused']} publishes refused) |")
    s = res.get("soak")
    if s:
        L.append(f"| soak: `test.ping` to all for {s['seconds']:.0f}s ({s['jobs']} jobs, {s['returns_short']} returns "
                 f"short): MWorker RSS | {s['rss_mb_start']} -> {s['rss_mb_end']} MB, worst "
                 f"{s['growth_pct_max']:+.2f} % ({s['growth_pct_per_hour_max']:+.2f} %/h)"
                 + (f"; second half {s['late_growth_pct_per_hour_max']:+.2f} %/h |"
                    if "late_growth_pct_per_hour_max" in s else " |"))
        if "series_mb" in s:
            series = ", ".join(f"{t}s {mb:.1f}" for t, mb in s["series_mb"])
            L.append(f"| soak: the largest MWorker's RSS (MB) over time | {series} |")
    L += ["", "Recovery: seconds from starting rx-master until `rx '*' test.ping` gets every minion. Returns lost: "
          "returns of the jobs the master accepted (the client got a jid) that are not in the job store 60 s after "
          "the stream; a refused publish is one the client was told about. Soak growth: from the end of the first "
          "quarter (warm-up) to the end; steady state: the second half, per hour.", ""]
    return L
