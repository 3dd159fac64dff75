"""`python -m bench` (`make bench`): measure rx, side by side with Salt 3007.8.

Brings up sandbox masters (temp root_dir, free loopback ports) and measures,
each figure the median of several runs:

  startup     `rx --version`, `rx-call --local test.ping` start-up time
  real        `rx '*' test.ping` with 10 and 50 real rx-minion processes; idle
              rx-minion RSS; whole master RSS idle; jobs/s one LocalClient
              publishes to 10 real minions, sequentially and concurrently
  salt        the same ping and memory figures for Salt (bench/salt_compare.py)
  swarm       N swarm minions (bench/swarm.py): cold auth storm (all N start at
              once against a freshly started master: time until all are
              authenticated and subscribed), time until all N return test.ping
              (LocalClient), returns lost, master RSS with N connected
  throughput  returns/s the master takes from the swarm (J jobs to N swarm
              minions, published at once)
  returns     returns/s the master sustains and its CPU per return, from pre-sealed
              returns of pre-authenticated sessions in another process, with a
              py-spy profile of one MWorker (bench/returns.py), and that CPU taken
              apart: a worker's Python alone, a zmq hand-off (bench/return_cost.py)
  jobstore    returns/s into each job store backend (SQLite, PostgreSQL) with
              1, 2 and 4 writer processes (bench/jobstore.py)
  reliability issue #9's faults on real daemons (bench/reliability.py):
              recovery after a master restart and kill -9, returns lost when
              each master process is killed mid-stream, MWorker RSS over a soak
  metrics     master CPU the Prometheus metrics cost per return and per event
              (bench/metrics_cost.py; no daemons)
  api_rest    rx-api: POST / local test.ping to 10 real minions vs the LocalClient,
              and login + run for 100 concurrent API users (bench/api_rest.py)
  api_events  rx-api's /events: events fired on the bus at a rate reach N SSE
              clients, none dropped (bench/api_events.py; --events RATE,CLIENTS,S)

Results are merged into bench/results.json (each entry keeps its own date and
commit) and bench/RESULTS.md is rewritten from it; the "## Analysis" part of
RESULTS.md is written by people and kept as it is.

    python -m bench                       # everything (about 10 minutes on 2 cores)
    python -m bench --quick               # a few minutes: fewer sizes and runs
    python -m bench --only swarm --sizes 100,1000
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from rx.config import default_workers
from tests.support.procs import cpu_seconds, pss_kb, rss_kb, tree_memory

from . import api_events, api_rest, jobstore, metrics_cost, reliability, return_cost, returns, targets15, zmq_floor
from .pyspy import Profiler, render as render_profile
from .sandbox import BenchSandbox, installed_venv, script, timed
from .swarm import SwarmGroup, max_minions_per_process, processes_needed, raise_nofile

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
SECTIONS = ("startup", "real", "salt", "swarm", "zmqfloor", "throughput", "returns", "jobstore", "reliability",
            "metrics", "api_rest", "api_events")
ANALYSIS_HEADING = "## Analysis"
OUTPUTS = ("RESULTS.md", "results.json", "results-patched.json")
"""What the benchmark writes: left out of the commit's "+dirty" mark (a run after a run is at a clean commit)."""

TARGETS = {
    "ping10_ratio": 1 / 6,
    "swarm10k_s": 5.0,
    "minion_rss_mb": 30.0,
    "master_idle_rss_mb": 250.0,
    "version_s": 0.1,
    "auth10k_s": 30.0,
}


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def median(xs: list[float]) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def ints(text: str) -> list[int]:
    return [int(x.replace("_", "")) for x in text.split(",") if x.strip()]


# ---------------------------------------------------------------- machine

def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def machine() -> dict:
    cpu = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    soft, hard = raise_nofile()
    return {"nproc": os.cpu_count(), "cpu": cpu, "ram_gb": round(mem_kb / 1024 / 1024, 1),
            "python": platform.python_version(), "kernel": platform.release(), "nofile": [soft, hard]}


def stamp() -> dict:
    dirty = _git("status", "--porcelain", "--untracked-files=no", "--", ".", *(f":!bench/{name}" for name in OUTPUTS))
    return {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": _git("rev-parse", "--short", "HEAD") + ("+dirty" if dirty else ""),
            "load": os.getloadavg()[0]}


# ---------------------------------------------------------------- measurements

def bench_startup(runs: int) -> dict:
    def timed(argv: list[str]) -> list[float]:
        out = []
        for _ in range(runs):
            t0 = time.perf_counter()
            cp = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
            out.append(time.perf_counter() - t0)
            if cp.returncode != 0:
                raise RuntimeError(f"{argv} exited {cp.returncode}: {cp.stderr[-500:]}")
        return out

    timed([*script("rx"), "--version"])  # warm the page cache
    python = str(Path(script("rx")[0]).parent / "python") if os.environ.get("RX_BENCH_VENV") else sys.executable
    res = {}
    for key, argv in (("python_baseline", [sys.executable, "-c", "pass"]),
                      ("cli_libraries", [python, "-c", CLI_LIBRARIES]),
                      ("rx_version", [*script("rx"), "--version"]),
                      ("rx_call_ping", [*script("rx-call"), "--local", "test.ping"])):
        ts = timed(argv)
        res[key] = {"s": median(ts), "min_s": min(ts), "runs": len(ts)}
        say(f"startup: {Path(argv[0]).name} {' '.join(argv[1:])}: median {res[key]['s']:.3f}s")
    for key, argv in (("rx_version", [*script("rx"), "--version"]),
                      ("rx_call_ping", [*script("rx-call"), "--local", "test.ping"])):
        res[key]["imports"] = _import_profile(python, argv)
    for key, imports in (("interpreter", ""), ("libraries", MINION_LIBRARIES),
                         ("minion_code", MINION_LIBRARIES + "import rx.minion.daemon\n")):
        res[f"floor_{key}"] = _idle_memory(python, imports)
        say(f"startup: idle memory, {key}: {res[f'floor_{key}']['rss_mb']:.1f} MB RSS")
    return res


def _import_profile(python: str, argv: list[str], top: int = 8) -> dict:
    """Where a command's start-up goes in imports: `python -X importtime` on its script (median of 3 runs of the
    total), the top-level imports by cumulative time (from the run with the median total), in ms."""
    cmd = ([argv[0], "-X", "importtime", *argv[1:]] if Path(argv[0]).name.startswith("python")
           else [python, "-X", "importtime", *argv])  # an entry-point script: run by its venv's interpreter
    runs = []
    for _ in range(3):
        cp = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        tops: dict[str, float] = {}
        for line in cp.stderr.splitlines():
            if not line.startswith("import time:") or "|" not in line:
                continue
            _self, cumulative, name = line[len("import time:"):].split("|", 2)
            if cumulative.strip().isdigit() and not name.startswith("  "):  # a top-level import: no indent
                tops[name.strip()] = tops.get(name.strip(), 0.0) + int(cumulative) / 1000
        runs.append(tops)
    runs.sort(key=lambda t: sum(t.values()))
    tops = runs[len(runs) // 2]
    return {"total_ms": round(sum(tops.values()), 1),
            "top": [[k, round(v, 1)] for k, v in sorted(tops.items(), key=lambda kv: -kv[1])[:top]]}


CLI_LIBRARIES = "import asyncio, msgpack, yaml, zmq, zmq.asyncio"
"""The libraries `rx '*' test.ping` cannot run without (the event loop, the sockets, the config file's YAML, the
wire's msgpack), imported and nothing else: the floor under the CLI's own time."""
MINION_LIBRARIES = ("import asyncio, logging, msgpack, yaml, zmq, zmq.asyncio\n"
                    "from nacl import bindings\n")
"""What rx-minion imports from outside rx before it runs a job: the floor under its idle memory."""


def _idle_memory(python: str, imports: str) -> dict:
    """RSS and PSS of an idle `python` that ran `imports` and nothing else (medians of 3)."""
    rss, pss = [], []
    for _ in range(3):
        p = subprocess.Popen([python, "-c", imports + "import sys\nprint('ready', flush=True)\nsys.stdin.read()"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
            rss.append(rss_kb(p.pid) / 1024)
            pss.append(pss_kb(p.pid) / 1024)
        finally:
            p.communicate("")
    return {"rss_mb": median(rss), "pss_mb": median(pss)}


async def _jobs_per_second(cfg_dir: str, n: int, jobs: int, concurrent: bool) -> tuple[float, int]:
    from rx.client.local import AsyncLocalClient
    async with AsyncLocalClient(cfg_dir) as client:
        async def one() -> int:
            got = await client.cmd("*", "test.ping", timeout=30)
            return sum(1 for v in got.values() if v is True)
        t0 = time.perf_counter()
        if concurrent:
            counts = await asyncio.gather(*(one() for _ in range(jobs)))
        else:
            counts = [await one() for _ in range(jobs)]
        dt = time.perf_counter() - t0
    return jobs / dt, jobs * n - sum(counts)


def bench_real(sizes: list[int], runs: int, workers: int, idle_wait: float, with_throughput: bool,
               tp_jobs: int) -> tuple[dict, dict]:
    out, tp = {}, {}
    for n in sizes:
        box = BenchSandbox(workers=workers)
        res: dict[str, Any] = {"n": n, "workers": workers or default_workers()}
        try:
            res["master_start_s"] = timed(box.start_master)
            time.sleep(idle_wait)
            res["master_idle_no_minions"] = tree_memory(box.master_pids())
            ids = [f"real-{i:03d}" for i in range(n)]
            say(f"real: starting {n} rx-minion processes")
            res["minions_start_s"] = box.start_minions(ids)
            box.rx("*", "test.ping")  # warm-up (first job: page cache, grains cache)
            times, failed = [], 0
            for _ in range(runs):
                dt, cp = box.rx("*", "test.ping", "--out", "json")
                ok = cp.returncode == 0
                if ok:
                    try:
                        doc = json.loads(cp.stdout)
                        ok = all(doc.get(m) is True for m in ids)
                    except ValueError:
                        ok = False
                failed += not ok
                times.append(dt)
            res["ping_s"] = median(times)
            res["ping_runs_s"] = times
            res["ping_failed_runs"] = failed
            say(f"real: {n} minions: `rx '*' test.ping` median {res['ping_s']:.3f}s ({failed} failed runs)")
            inproc = [asyncio.run(_swarm_ping(str(box.master_dir), timeout=30.0)) for _ in range(runs)]
            res["inproc"] = {"s": median([x["s"] for x in inproc]), "first_s": median([x["first_s"] for x in inproc]),
                             "lost": sum(x["lost"] for x in inproc)}
            say(f"real: {n} minions: in-process AsyncLocalClient test.ping: all returns {res['inproc']['s']:.3f}s, "
                f"first {res['inproc']['first_s']:.3f}s (medians), lost {res['inproc']['lost']}")
            time.sleep(idle_wait)
            pids = list(box.minion_pids().values())
            res["minion_rss_mb_median"] = median([rss_kb(p) / 1024 for p in pids])
            res["minion_pss_mb_median"] = median([pss_kb(p) / 1024 for p in pids])
            res["master_idle"] = tree_memory(box.master_pids())
            say(f"real: idle rx-minion RSS {res['minion_rss_mb_median']:.1f} MB; master idle "
                f"{res['master_idle']['rss_mb']:.0f} MB RSS / {res['master_idle']['pss_mb']:.0f} MB PSS "
                f"({res['master_idle']['procs']} processes)")
            if with_throughput and n == min(sizes):
                for mode in ("sequential", "concurrent"):
                    rates, lost = [], 0
                    for _ in range(3):
                        rate, l = asyncio.run(_jobs_per_second(str(box.master_dir), n, tp_jobs, mode == "concurrent"))
                        rates.append(rate)
                        lost += l
                    tp[f"jobs_per_s_{mode}"] = {"n": n, "jobs": tp_jobs, "rate": median(rates), "runs": rates,
                                                "lost_returns": lost, "workers": workers or default_workers()}
                    say(f"throughput: {n} real minions, {tp_jobs} jobs {mode}: {median(rates):.1f} jobs/s "
                        f"(lost returns {lost})")
        finally:
            box.close()
        out[str(n)] = res
    return out, tp


async def _swarm_ping(cfg_dir: str, timeout: float) -> dict:
    from rx.client.local import AsyncLocalClient
    async with AsyncLocalClient(cfg_dir) as client:
        published: list = []
        returned = ok = 0
        t0 = time.perf_counter()
        t_pub = t_first = t_last = None
        async for item in client.cmd_iter("*", "test.ping", timeout=timeout, published=published,
                                          expect_minions=True):
            if t_pub is None:
                t_pub = time.perf_counter()
            for _mid, r in item.items():
                if r.get("failed"):
                    continue
                returned += 1
                ok += r.get("ret") is True
                t_last = time.perf_counter()
                t_first = t_first or t_last
        expected = len(published[0].minions) if published else 0
    return {"s": (t_last or time.perf_counter()) - t0, "first_s": (t_first or t0) - t0, "expected": expected,
            "returned": returned, "ok": ok, "lost": expected - returned}


async def _returns_rate(cfg_dir: str, n: int, jobs: int, timeout: float) -> dict:
    """J jobs to all swarm minions at once; returns/s from the first publish to the last return."""
    from rx.client.local import AsyncLocalClient
    async with AsyncLocalClient(cfg_dir) as client:
        counts = [0] * jobs
        last = [0.0]

        async def one(i: int) -> None:
            async for item in client.cmd_iter("*", "test.ping", timeout=timeout, expect_minions=False):
                counts[i] += len(item)
                last[0] = time.perf_counter()
        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(jobs)))
    total = sum(counts)
    return {"rate": total / (last[0] - t0) if total else 0.0, "returns": total, "expected": jobs * n,
            "lost": jobs * n - total, "s": last[0] - t0}


def _swarm_once(n: int, workers: int, procs: int | None, ping_runs: int, tp: tuple[int, int] | None,
                idle_wait: float, ready_timeout: float, profile: bool = False) -> dict:
    box = BenchSandbox(workers=workers)
    res: dict[str, Any] = {"n": n, "workers": workers or default_workers(), "catch_up": True}
    group: SwarmGroup | None = None
    try:
        box.prepare_pki()
        group = SwarmGroup(box.master_dir, n, procs=procs)
        res["procs"] = group.procs
        res["keys_s"] = group.prepare()
        res["master_start_s"] = timed(box.start_master)
        time.sleep(idle_wait)
        res["master_idle_no_minions"] = tree_memory(box.master_pids())
        group.start()
        group.wait_started()
        c0 = (cpu_seconds(box.master_pids()), cpu_seconds(group.pids()))
        by0 = returns.cpu_by_process(box.master_pids())
        profilers = {"mworker-0": Profiler.start(returns.worker_pid(box.master_pids())),
                     "swarm process 1": Profiler.start(group.pids()[0])} if profile else {}
        st = group.wait_ready(timeout=ready_timeout, on_status=lambda s: say(
            f"swarm {n}: authenticated {s['authenticated']}, subscribed {s['subscribed']}, errors {s['errors']}"))
        res["auth_s"] = st["t_auth_all"] - st["t_start"]
        res["subscribed_s"] = st["t_sub_all"] - st["t_start"]
        res["storm_s"] = max(res["auth_s"], res["subscribed_s"])
        res["storm_cpu_s"] = {"master": cpu_seconds(box.master_pids()) - c0[0],
                              "swarm": cpu_seconds(group.pids()) - c0[1]}
        res["storm_master_cpu_by_process"] = {k: round(v - by0.get(k, 0.0), 2)
                                              for k, v in returns.cpu_by_process(box.master_pids()).items()}
        if profilers:
            res["storm_profile"] = {k: prof.stop() for k, prof in profilers.items()}
        say(f"swarm {n}: cold auth storm: all authenticated {res['auth_s']:.2f}s, all subscribed "
            f"{res['subscribed_s']:.2f}s; CPU s: master {res['storm_cpu_s']['master']:.2f}, "
            f"swarm {res['storm_cpu_s']['swarm']:.2f}")
        if ping_runs:
            time.sleep(idle_wait)
            pings = []
            mpids, spids = box.master_pids(), group.pids()
            for i in range(ping_runs):
                c0 = (cpu_seconds(mpids), cpu_seconds(spids), time.process_time())
                p = asyncio.run(_swarm_ping(str(box.master_dir), timeout=60.0))
                c1 = (cpu_seconds(mpids), cpu_seconds(spids), time.process_time())
                p["cpu_s"] = {"master": c1[0] - c0[0], "swarm": c1[1] - c0[1], "client": c1[2] - c0[2]}
                pings.append(p)
                say(f"swarm {n}: test.ping run {i + 1}: {p['returned']}/{p['expected']} returned in {p['s']:.3f}s, "
                    f"lost {p['lost']}; CPU s: master {p['cpu_s']['master']:.2f}, swarm {p['cpu_s']['swarm']:.2f}, "
                    f"client {p['cpu_s']['client']:.2f}")
                time.sleep(1.0)
            res["ping_s"] = median([p["s"] for p in pings])
            res["ping_cpu_s"] = {k: median([p["cpu_s"][k] for p in pings]) for k in ("master", "swarm", "client")}
            res["ping_runs"] = pings
            res["lost"] = sum(p["lost"] for p in pings)
            res["expected_ok"] = all(p["expected"] == n for p in pings)
            if tp is not None:
                jobs, runs = tp
                rates = []
                for _ in range(runs):
                    r = asyncio.run(_returns_rate(str(box.master_dir), n, jobs, timeout=60.0))
                    rates.append(r)
                    say(f"throughput: {jobs} jobs x {n} swarm minions: {r['returns']} returns, {r['rate']:.0f}/s, "
                        f"lost {r['lost']}")
                    time.sleep(1.0)
                res["returns_per_s"] = {"rate": median([r["rate"] for r in rates]), "runs": rates, "jobs": jobs}
            time.sleep(idle_wait)
            res["master_connected"] = tree_memory(box.master_pids())
            res["master_connected_by_process"] = _memory_by_process(box.master_pids())
            st = group.refresh()
            res["swarm_rss_mb"] = st["rss_kb"] / 1024
            res["swarm_errors"] = st["errors"]
            say(f"swarm {n}: master with {n} connected: {res['master_connected']['rss_mb']:.0f} MB RSS / "
                f"{res['master_connected']['pss_mb']:.0f} MB PSS; swarm processes {res['swarm_rss_mb']:.0f} MB")
            res["reconnect"] = _reconnect_storm(box, n, deadline=ready_timeout)
    finally:
        if group is not None:
            group.stop()
        box.close()
    return res


def _ping_times(p: dict) -> str:
    """One ping of the restart log: when it started, got its first and last return, and ended (older runs logged
    only the end)."""
    if p.get("start_s") is None:
        return f"ended {p['end_s']:.1f}s ({p['returned']:,} returned)"
    marks = [f"{p[k]:.1f}" if p.get(k) is not None else "-" for k in ("start_s", "first_s", "last_s", "end_s")]
    return f"{' / '.join(marks)} ({p['returned']:,} returned)"


def _reconnect_storm(box: BenchSandbox, n: int, deadline: float) -> dict:
    """Restart the master (SIGTERM, start again) with n swarm minions connected, then ping all of them until
    one ping gets all n returns: seconds from the stop to the end of that ping, the pings it took, and the
    master's memory then and at its largest meanwhile (sampled between pings)."""
    t0 = time.perf_counter()
    box.stop_master()
    stopped = time.perf_counter() - t0
    box.start_master()
    started = time.perf_counter() - t0
    say(f"swarm {n}: master restart: stopped after {stopped:.1f}s, started (answering) after {started:.1f}s")
    attempts, peak, pings = 0, 0.0, []
    while True:
        attempts += 1
        begun = time.perf_counter() - t0
        p = asyncio.run(_swarm_ping(str(box.master_dir), timeout=5.0))
        pings.append({"returned": p["returned"], "end_s": round(time.perf_counter() - t0, 2),
                      "start_s": round(begun, 2), "first_s": round(begun + p["first_s"], 2) if p["returned"] else None,
                      "last_s": round(begun + p["s"], 2) if p["returned"] else None})
        mem = tree_memory(box.master_pids())
        peak = max(peak, mem["rss_mb"])
        say(f"swarm {n}: after the master restart, ping {attempts}: {p['returned']}/{n} returned "
            f"({time.perf_counter() - t0:.1f}s since the stop; master {mem['rss_mb']:.0f} MB RSS)")
        if p["returned"] >= n or time.perf_counter() - t0 > deadline:
            break
    return {"all_answer_s": time.perf_counter() - t0 if p["returned"] >= n else None, "pings": attempts,
            "last_returned": p["returned"], "master_rss_mb": mem["rss_mb"], "master_pss_mb": mem["pss_mb"],
            "master_peak_rss_mb": peak, "stopped_s": round(stopped, 2), "started_s": round(started, 2),
            "ping_log": pings}


def bench_swarm(sizes: list[int], storm_sizes: list[int], storm_runs: int, runs: int, workers: int,
                procs: int | None, idle_wait: float, tp_size: int | None, tp_jobs: int, tp_runs: int) -> dict:
    out = {}
    for n in sizes:
        ready_timeout = max(120.0, n / 50)
        try:
            storms = []
            extra = storm_runs - 1 if n in storm_sizes else 0
            for _ in range(extra):
                r = _swarm_once(n, workers, procs, 0, None, idle_wait=0.5, ready_timeout=ready_timeout)
                storms.append(r)
            tp = (tp_jobs, tp_runs) if tp_size == n else None
            res = _swarm_once(n, workers, procs, runs, tp, idle_wait, ready_timeout=ready_timeout,
                              profile=n == max(sizes))
            storms.append(res)
        except Exception as exc:  # record it and go on with the other sizes
            say(f"swarm {n}: FAILED: {exc.__class__.__name__}: {exc}")
            out[str(n)] = {"n": n, "error": f"{exc.__class__.__name__}: {exc}"}
            continue
        res["storm_runs"] = [{"auth_s": s["auth_s"], "subscribed_s": s["subscribed_s"], "storm_s": s["storm_s"],
                              "cpu_s": s.get("storm_cpu_s")} for s in storms]
        res["storm_s"] = median([s["storm_s"] for s in storms])
        res["auth_s"] = median([s["auth_s"] for s in storms])
        res["subscribed_s"] = median([s["subscribed_s"] for s in storms])
        out[str(n)] = res
    return out


# ---------------------------------------------------------------- results files

def merge(old: dict, new: dict) -> dict:
    """Sections keyed by size are merged entry by entry; everything else is replaced."""
    out = dict(old)
    for key, value in new.items():
        if key in ("real", "swarm") and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        elif key == "salt" and isinstance(out.get(key), dict) and value.get("available"):
            out[key] = {**out[key], **value, "sizes": {**out[key].get("sizes", {}), **value.get("sizes", {})}}
        elif key == "throughput" and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def _stamp_entries(section: Any, st: dict) -> Any:
    if isinstance(section, dict):
        for v in section.values():
            if isinstance(v, dict):
                v.setdefault("measured", st)
    return section


def evaluate(r: dict) -> list[dict]:
    def get(*path: str) -> Any:
        return targets15.lookup(r, *path)

    rows = []
    rx10, salt10 = get("real", "10", "ping_s"), get("salt", "sizes", "10", "ping_s")
    ratio = rx10 / salt10 if rx10 and salt10 else None
    rows.append({"target": "`rx '*' test.ping`, 10 real minions <= 1/6 of Salt's time", "measured":
                 f"{rx10:.3f}s vs {salt10:.3f}s = 1/{1 / ratio:.1f}" if ratio else "not measured",
                 "met": None if ratio is None else ratio <= TARGETS["ping10_ratio"]})
    s10k, lost = get("swarm", "10000", "ping_s"), get("swarm", "10000", "lost")
    rows.append({"target": "10,000 swarm minions: all returns <= 5 s, none lost", "measured":
                 f"{s10k:.2f}s, {lost} lost" if s10k is not None else "not measured",
                 "met": None if s10k is None else (s10k <= TARGETS["swarm10k_s"] and lost == 0)})
    m = get("real", "10", "minion_rss_mb_median")
    rows.append({"target": "idle rx-minion < 30 MB RSS", "measured": f"{m:.1f} MB" if m else "not measured",
                 "met": None if m is None else m < TARGETS["minion_rss_mb"]})
    mi = get("real", "10", "master_idle", "rss_mb")
    pss = get("real", "10", "master_idle", "pss_mb")
    rows.append({"target": "whole master idle < 250 MB (RSS summed over its processes)",
                 "measured": f"{mi:.0f} MB RSS ({pss:.0f} MB PSS)" if mi else "not measured",
                 "met": None if mi is None else mi < TARGETS["master_idle_rss_mb"]})
    v = get("startup", "rx_version", "s")
    rows.append({"target": "`rx --version` < 0.1 s", "measured": f"{v:.3f}s" if v else "not measured",
                 "met": None if v is None else v < TARGETS["version_s"]})
    a = get("swarm", "10000", "storm_s")
    rows.append({"target": "cold auth of 10,000 minions < 30 s", "measured": f"{a:.1f}s" if a else "not measured",
                 "met": None if a is None else a < TARGETS["auth10k_s"]})
    rows += reliability.target_rows(get("reliability"))
    rows += returns.target_rows(get("returns"))
    rows += targets15.target_rows(r)
    return rows


def _reconnect_cell(rc: dict | None) -> str:
    if not rc:
        return "—"
    if rc.get("all_answer_s") is None:
        return f"not all: {rc['last_returned']:,} after {rc['pings']} pings"
    return f"{rc['all_answer_s']:.1f}s ({rc['pings']} pings; master {rc['master_peak_rss_mb']:.0f} MB RSS at most)"


def _memory_by_process(pids: list[int]) -> dict[str, dict[str, float]]:
    """RSS and PSS in MB of each process, by its name (the master's children name themselves)."""
    from tests.support.procs import comm
    return {comm(pid) or str(pid): {"rss_mb": rss_kb(pid) / 1024, "pss_mb": pss_kb(pid) / 1024} for pid in pids}


def _slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of y over x (None with fewer than two distinct x)."""
    if len({x for x, _ in points}) < 2:
        return None
    mx, my = statistics.fmean(x for x, _ in points), statistics.fmean(y for _, y in points)
    return sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x, _ in points)


def _swarm_notes(sw: dict) -> list[str]:
    """Below the Swarm table: the master's memory per connection (a slope over N), where the largest size's storm
    and restart spent their time, and the storm's profiles."""
    L: list[str] = []
    rows = [(int(n), res) for n, res in sorted(sw.items(), key=lambda kv: int(kv[0])) if res.get("master_connected")]
    for key, label in (("rss_mb", "RSS"), ("pss_mb", "PSS")):
        k = _slope([(n, res["master_connected"][key]) for n, res in rows])
        if k is not None:
            L.append(f"- Master {label} per connected minion (least-squares slope over N = "
                     f"{', '.join(f'{n:,}' for n, _ in rows)}): {k * 1024:.1f} KB.")
    procs = [(n, res["master_connected_by_process"]) for n, res in rows if res.get("master_connected_by_process")]
    names = set.intersection(*(set(by) for _, by in procs)) if len(procs) >= 2 else set()
    per = {name: _slope([(n, by[name]["pss_mb"]) for n, by in procs]) for name in names}
    if per:
        L.append(f"- Of it, by master process (PSS slope over N = {', '.join(f'{n:,}' for n, _ in procs)}): " + ", ".join(
            f"{name} {k * 1024:.1f} KB" for name, k in sorted(per.items(), key=lambda kv: -(kv[1] or 0))
            if k is not None) + ".")
    if not rows:
        return L
    n, res = rows[-1]
    by, cpu = res.get("storm_master_cpu_by_process"), res.get("storm_cpu_s") or {}
    if by:
        last = (res.get("storm_runs") or [res])[-1]["storm_s"]  # the storm the profiles and these figures are of
        L.append(f"- CPU during the last {n:,}-minion cold-auth storm ({last:.1f}s; two cores give {2 * last:.0f} "
                 f"CPU-seconds in that time): the swarm processes {cpu.get('swarm', 0):.1f}s, "
                 f"the master {cpu.get('master', 0):.1f}s, by process " + ", ".join(
                     f"{k} {v:.1f}s" for k, v in sorted(by.items(), key=lambda kv: -kv[1]) if v >= 0.05) + ".")
    rc = res.get("reconnect") or {}
    if rc.get("stopped_s") is not None:
        L.append(f"- The {n:,}-minion master restart: stopped {rc['stopped_s']:.1f}s after the SIGTERM, answering "
                 f"{rc['started_s']:.1f}s after it; pings (seconds from the stop: started, first return, last return, "
                 "ended) " + ", ".join(_ping_times(p) for p in rc.get("ping_log", [])) + ".")
    L.append("")
    for name, prof in (res.get("storm_profile") or {}).items():
        L += render_profile(prof, f"Profile of {name} during the last {n:,}-minion cold-auth storm (py-spy attached "
                                  "to it)")
    return L


def _f(x: Any, fmt: str = "{:.3f}", unit: str = "s") -> str:
    return "—" if x is None else fmt.format(x) + unit


def render_md(r: dict, analysis: str) -> str:
    m, st = r.get("machine", {}), r.get("stamp", {})
    L = ["# rx benchmark results", "",
         f"Written by `python -m bench` (`make bench`); last run {st.get('date', '?')} at commit "
         f"`{st.get('commit', '?')}` with `{r.get('argv', '')}`. Every figure is the median of several runs; "
         "entries measured in earlier runs carry their own date and commit in results.json.", "",
         "| Machine | |", "|---|---|",
         f"| CPUs (`nproc`) | {m.get('nproc')} |", f"| CPU | {m.get('cpu')} |", f"| RAM | {m.get('ram_gb')} GB |",
         f"| Python | {m.get('python')} |", f"| Kernel | {m.get('kernel')} |",
         f"| RLIMIT_NOFILE | {m.get('nofile')} |",
         f"| Load average (1 min) at start / end | {st.get('load', 0):.2f} / {r.get('load_end', 0):.2f} "
         "(the machine is shared) |", ""]
    L += ["## Targets", "", "| Target (issue 3 unless named) | Measured | Met |", "|---|---|---|"]
    for row in evaluate(r):
        met = {True: "yes", False: "**no**", None: "—"}[row["met"]]
        L.append(f"| {row['target']} | {row['measured']} | {met} |")
    L.append("")

    L += ["## `rx '*' test.ping` with real minions, side by side with Salt 3007.8", "",
          "| Minions | rx | Salt | rx / Salt | rx failed runs |", "|---|---|---|---|---|"]
    salt = r.get("salt", {})
    for n, res in sorted(r.get("real", {}).items(), key=lambda kv: int(kv[0])):
        s = salt.get("sizes", {}).get(n, {}).get("ping_s")
        ratio = f"1/{s / res['ping_s']:.1f}" if s and res.get("ping_s") else "—"
        L.append(f"| {n} | {_f(res.get('ping_s'))} | {_f(s)} | {ratio} | {res.get('ping_failed_runs', '—')} |")
    if salt.get("skipped"):
        L += ["", f"Salt: {salt['skipped']}"]
    inproc = [(n, res["inproc"]) for n, res in sorted(r.get("real", {}).items(), key=lambda kv: int(kv[0]))
              if res.get("inproc")]
    if inproc:
        L += ["", "Where rx's time goes: the same ping from an AsyncLocalClient already running in the bench's process "
              "(no CLI start-up, no output), medians: " + "; ".join(
                  f"{int(n)} minions: first return {x['first_s']:.3f}s, all {x['s']:.3f}s ({x['lost']} lost)"
                  for n, x in inproc) + ". The rest of the `rx` column is the CLI's own start-up, connection and "
              "output."]
    L.append("")

    L += ["## Swarm (real Minion code, inline execution, N minions in a few processes)", "",
          "| N | swarm procs | all authenticated | all subscribed | all test.ping returns | lost | "
          "CPU s per ping: master / swarm / client | master RSS / PSS with N connected | swarm RSS | "
          "master restarted: all answer |",
          "|---|---|---|---|---|---|---|---|---|---|"]
    errors = []
    for n, res in sorted(r.get("swarm", {}).items(), key=lambda kv: int(kv[0])):
        if res.get("error"):
            errors.append(f"N={int(n):,}: {res['error']}")
        mc = res.get("master_connected") or {}
        cpu = res.get("ping_cpu_s") or {}
        cpu_s = " / ".join(_f(cpu.get(k), "{:.2f}", "") for k in ("master", "swarm", "client")) if cpu else "—"
        L.append(f"| {int(n):,}{'' if res.get('catch_up') else ' (catch-up watcher off)'} | {res.get('procs', '—')} | "
                 f"{_f(res.get('auth_s'), '{:.2f}')} | "
                 f"{_f(res.get('subscribed_s'), '{:.2f}')} | {_f(res.get('ping_s'))} | {res.get('lost', '—')} | "
                 f"{cpu_s} | {_f(mc.get('rss_mb'), '{:.0f}', ' MB')} / {_f(mc.get('pss_mb'), '{:.0f}', ' MB')} | "
                 f"{_f(res.get('swarm_rss_mb'), '{:.0f}', ' MB')} | {_reconnect_cell(res.get('reconnect'))} |")
    if errors:
        L += [""] + [f"Failed: {e}" for e in errors]
    L += ["", "All authenticated / subscribed: seconds from the moment all N swarm minions start (at once, "
          "against a master started just before, keys pre-accepted) until every one holds a session / has its "
          "SUB connection to the publisher established (the median over the storm runs). All returns: "
          "LocalClient `cmd_iter('*', 'test.ping')` from the call until the last return, median of the runs; lost "
          "counts returns that never came (summed over all runs). CPU s: CPU time used during one ping by the whole "
          "master (all its processes), the swarm processes and the LocalClient process (medians); all share the "
          "same cores. Each simulated minion watches its publish connection and asks for the jobs it missed after a "
          "reconnection, as rx-minion does (rows measured before that was so say so). Master restarted: "
          "rx-master stopped (SIGTERM) and started again with the N minions connected, then `test.ping` to all (5 s timeout) until one ping gets all N returns: seconds from the "
          "stop to the end of that ping, the pings it took, and the master's largest RSS between pings.", ""]
    L += _swarm_notes(r.get("swarm", {}))
    z = r.get("zmq_floor")
    if z:
        L += [f"- libzmq alone (bench/zmq_floor.py: a bare socket of each relay's type with its options, "
              f"{z['n']:,} connections from another process, a request and reply or a publication on each): "
              f"ROUTER {z['router']['kb_per_connection']:.1f} KB + XPUB {z['xpub']['kb_per_connection']:.1f} KB = "
              f"{z['kb_per_minion']:.1f} KB per minion, the floor under the master's slope above.", ""]

    tp = r.get("throughput", {})
    L += ["## Throughput", "", "| Measurement | Result |", "|---|---|"]
    for n, res in sorted(r.get("swarm", {}).items(), key=lambda kv: int(kv[0])):
        rp = res.get("returns_per_s")
        if rp:
            lost = sum(x["lost"] for x in rp["runs"])
            L.append(f"| returns/s the master takes: {rp['jobs']} jobs published at once to {int(n):,} swarm "
                     f"minions | {rp['rate']:.0f} returns/s (lost {lost}) |")
    for mode in ("sequential", "concurrent"):
        j = tp.get(f"jobs_per_s_{mode}")
        if j:
            L.append(f"| jobs/s one LocalClient runs on {j['n']} real minions, {j['jobs']} jobs {mode} "
                     f"(publish + all returns) | {j['rate']:.1f} jobs/s (lost {j['lost_returns']}) |")
    L.append("")

    L += returns.render(r.get("returns"))
    L += jobstore.render(r.get("jobstore"))
    L += reliability.render(r.get("reliability"))
    L += metrics_cost.render_section(r.get("metrics"))
    L += api_rest.render(r.get("api_rest"))
    L += api_events.render_section(r.get("api_events"))

    L += ["## Memory", "", "| Process(es) | rx RSS | rx PSS | Salt RSS | Salt PSS |", "|---|---|---|---|---|"]
    r10 = r.get("real", {}).get("10", {})
    s10 = salt.get("sizes", {}).get("10", {})
    smt = s10.get("minion_tree", {})
    L.append(f"| idle minion (rx: one process; Salt: its 2 processes) | {_f(r10.get('minion_rss_mb_median'), '{:.1f}', ' MB')} | "
             f"{_f(r10.get('minion_pss_mb_median'), '{:.1f}', ' MB')} | {_f(smt.get('rss_mb_median'), '{:.1f}', ' MB')} | "
             f"{_f(smt.get('pss_mb_median'), '{:.1f}', ' MB')} |")
    L.append(f"| idle minion, largest process | {_f(r10.get('minion_rss_mb_median'), '{:.1f}', ' MB')} | | "
             f"{_f(smt.get('largest_process_rss_mb_median'), '{:.1f}', ' MB')} | |")
    for key, label in (("interpreter", "the floor: the Python interpreter alone, idle"),
                       ("libraries", "the floor: the interpreter with the minion's libraries imported (asyncio, "
                                     "pyzmq, msgpack, PyYAML, PyNaCl), no rx code"),
                       ("minion_code", "the same with rx-minion's modules imported too (`import rx.minion.daemon`), "
                                       "nothing started")):
        fl = r.get("startup", {}).get(f"floor_{key}") or {}
        L.append(f"| {label} | {_f(fl.get('rss_mb'), '{:.1f}', ' MB')} | {_f(fl.get('pss_mb'), '{:.1f}', ' MB')} | | |")
    for label, rk, sk in (("whole master, idle, no minions", "master_idle_no_minions", "master_idle_no_minions"),
                          ("whole master, idle, 10 minions connected", "master_idle", "master_idle")):
        a, b = r10.get(rk) or {}, s10.get(sk) or {}
        L.append(f"| {label} (rx {a.get('procs', '—')} / Salt {b.get('procs', '—')} processes) | "
                 f"{_f(a.get('rss_mb'), '{:.0f}', ' MB')} | {_f(a.get('pss_mb'), '{:.0f}', ' MB')} | "
                 f"{_f(b.get('rss_mb'), '{:.0f}', ' MB')} | {_f(b.get('pss_mb'), '{:.0f}', ' MB')} |")
    big = max(r.get("swarm", {}), key=int, default=None)
    if big and r["swarm"][big].get("master_connected"):
        mc = r["swarm"][big]["master_connected"]
        L.append(f"| whole master, {int(big):,} swarm minions connected | {mc['rss_mb']:.0f} MB | "
                 f"{mc['pss_mb']:.0f} MB | | |")
    L += ["", "RSS summed over a process tree counts pages shared between forked processes once per process "
          "(that is how Salt's 755 MB in the issue was counted); PSS splits shared pages between the processes "
          "that share them, so it sums to the real footprint.", ""]

    su = r.get("startup", {})
    L += ["## Start-up", "", "| Command | median | fastest |", "|---|---|---|"]
    for key, label in (("python_baseline", "`python -c pass` (interpreter alone)"),
                       ("cli_libraries", f"`python -c '{CLI_LIBRARIES}'` (the libraries `rx` needs, nothing else)"),
                       ("rx_version", "`rx --version`"), ("rx_call_ping", "`rx-call --local test.ping`")):
        if key in su:
            L.append(f"| {label} | {su[key]['s']:.3f}s | {su[key]['min_s']:.3f}s |")
    L.append("")
    for key, label in (("rx_version", "`rx --version`"), ("rx_call_ping", "`rx-call --local test.ping`")):
        imp = (su.get(key) or {}).get("imports")
        if imp:
            L += [f"Imports of {label} (`python -X importtime`, top-level modules by cumulative time, the run with the "
                  f"median total of 3; `site` includes the interpreter's own start): {imp['total_ms']:.0f} ms in all; "
                  + ", ".join(f"`{k}` {v:.1f} ms" for k, v in imp["top"]) + ".", ""]
    L.append(analysis.rstrip() + "\n" if analysis else f"{ANALYSIS_HEADING}\n\n(not written yet)\n")
    return "\n".join(L)


def write_results(results: dict, out_dir: Path) -> None:
    json_path, md_path = out_dir / "results.json", out_dir / "RESULTS.md"
    json_path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    analysis = ""
    if md_path.exists():
        text = md_path.read_text()
        i = text.find(ANALYSIS_HEADING)
        if i >= 0:
            analysis = text[i:]
    md_path.write_text(render_md(results, analysis))
    say(f"wrote {md_path} and {json_path}")


# ---------------------------------------------------------------- main

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0],
                                epilog="sections: " + ", ".join(SECTIONS))
    p.add_argument("--quick", action="store_true", help="a few minutes: swarm 100,1000; 10 real minions; 3 runs")
    p.add_argument("--only", help="comma-separated sections to run (default: all)")
    p.add_argument("--skip", help="comma-separated sections to skip")
    p.add_argument("--sizes", help="swarm sizes (default 100,1000,5000,10000)")
    p.add_argument("--storm-sizes", help="swarm sizes whose auth storm is repeated --storm-runs times "
                                         "(default 1000,10000)")
    p.add_argument("--storm-runs", type=int, help="auth storm runs per storm size (default 3)")
    p.add_argument("--real", help="real minion counts (default 10,50)")
    p.add_argument("--runs", type=int, help="runs per figure (default 5)")
    p.add_argument("--workers", type=int, default=None,
                   help="master workers: rx worker_processes, Salt worker_threads (default: each one's own; rx: one per CPU, "
                        "Salt: 5)")
    p.add_argument("--swarm-procs", type=int, help="swarm processes (default: as few as the fd limit allows)")
    p.add_argument("--throughput-size", type=int, help="swarm size for returns/s (default 1000)")
    p.add_argument("--throughput-jobs", type=int, default=10, help="jobs published at once for returns/s")
    p.add_argument("--returns-minions", type=int, help="sessions sending returns in the returns section (default "
                                                          "1000; --quick 500)")
    p.add_argument("--returns-jobs", type=int, default=20, help="jobs each session returns in the returns section")
    p.add_argument("--returns-rate", type=float, default=2000.0, help="the returns section's paced run: returns/s")
    p.add_argument("--reliability-minions", type=int, default=20, help="real minions for the reliability section")
    p.add_argument("--soak", type=float,
                   help="seconds of the reliability soak (default 1800: a worker warms up for ~10 min; --quick 60)")
    p.add_argument("--events", default="5000,20,10", help="api_events: events/s, SSE clients, seconds")
    p.add_argument("--dev-install", action="store_true",
                   help="time the CLI from this interpreter (editable install) instead of a clean bench/.rxvenv")
    p.add_argument("--no-salt", action="store_true", help="skip the Salt comparison")
    p.add_argument("--idle-wait", type=float, default=3.0, help="seconds to let things settle before memory")
    p.add_argument("--out-dir", default=str(BENCH_DIR), help="where RESULTS.md and results.json go")
    p.add_argument("--fresh", action="store_true", help="do not merge with the previous results.json")
    p.add_argument("--no-write", action="store_true", help="print results, write no files")
    p.add_argument("--patch", help="comma-separated experimental patches from bench/patched.py (results go to "
                                   "results-patched.json only)")
    a = p.parse_args(argv)
    a.sizes = ints(a.sizes) if a.sizes else ([100, 1000] if a.quick else [100, 1000, 5000, 10000])
    a.storm_sizes = ints(a.storm_sizes) if a.storm_sizes else [1000, 10000]
    a.storm_runs = a.storm_runs or (1 if a.quick else 3)
    a.real = ints(a.real) if a.real else ([10] if a.quick else [10, 50])
    a.runs = a.runs or (3 if a.quick else 5)
    a.soak = a.soak or (60.0 if a.quick else 1800.0)
    a.throughput_size = a.throughput_size or (1000 if 1000 in a.sizes else max(a.sizes))
    only = set(a.only.split(",")) if a.only else set(SECTIONS)
    only -= set(a.skip.split(",")) if a.skip else set()
    if a.no_salt:
        only.discard("salt")
    bad = only - set(SECTIONS)
    if bad:
        p.error(f"unknown section(s) {', '.join(sorted(bad))}; choose from {', '.join(SECTIONS)}")
    a.sections = only
    return a


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.patch:
        os.environ["RX_BENCH_PATCHES"] = args.patch
    elif not args.dev_install and {"startup", "real"} & set(args.sections):
        say("bench: installing rx into bench/.rxvenv (pip install ., as a user would) to time its CLI")
        os.environ["RX_BENCH_VENV"] = str(installed_venv(REPO, BENCH_DIR / ".rxvenv"))
    if os.environ.get("RX_BENCH_PATCHES"):
        from .patched import apply
        say(f"bench: PATCHED run: {', '.join(apply())} (results go to results-patched.json only)")
    mach = machine()
    st = stamp()
    say(f"bench: {mach['nproc']} CPUs ({mach['cpu']}), {mach['ram_gb']} GB, Python {mach['python']}, commit "
        f"{st['commit']}, load {st['load']:.2f}; sections: {', '.join(s for s in SECTIONS if s in args.sections)}")
    if "swarm" in args.sections:
        say(f"bench: swarm sizes {args.sizes}; up to {max_minions_per_process()} minions per swarm process "
            f"({processes_needed(max(args.sizes))} process(es) for {max(args.sizes)})")
    new: dict[str, Any] = {"machine": mach, "stamp": st, "argv": "python -m bench " + " ".join(argv or sys.argv[1:])}
    sections: list[tuple[str, Callable[[], None]]] = []

    def run_startup() -> None:
        new["startup"] = _stamp_entries(bench_startup(max(args.runs, 10)), st)

    def run_real() -> None:
        real, tp = bench_real(args.real, args.runs, args.workers, args.idle_wait, "throughput" in args.sections,
                              tp_jobs=20)
        new["real"] = _stamp_entries(real, st)
        if tp:
            new["throughput"] = _stamp_entries(tp, st)

    def run_salt() -> None:
        from .salt_compare import measure
        salt = measure(args.real, runs=args.runs, workers=args.workers or 5, idle_wait=args.idle_wait,
                       progress=say)
        _stamp_entries(salt.get("sizes", {}), st)
        new["salt"] = salt

    def run_swarm() -> None:
        tp_size = args.throughput_size if "throughput" in args.sections else None
        new["swarm"] = _stamp_entries(bench_swarm(args.sizes, args.storm_sizes, args.storm_runs, args.runs,
                                                  args.workers, args.swarm_procs, args.idle_wait, tp_size,
                                                  args.throughput_jobs, tp_runs=3), st)

    def run_zmqfloor() -> None:
        new["zmq_floor"] = zmq_floor.measure(min(3000, max(args.sizes)))
        new["zmq_floor"]["measured"] = st
        z = new["zmq_floor"]
        say(f"zmqfloor: libzmq per connection ({z['n']} connections): ROUTER {z['router']['kb_per_connection']:.1f} "
            f"KB, XPUB {z['xpub']['kb_per_connection']:.1f} KB: {z['kb_per_minion']:.1f} KB per minion")

    def run_returns() -> None:
        new["returns"] = returns.bench_returns(args.returns_minions or (500 if args.quick else 1000), args.returns_jobs,
                                               min(args.runs, 3), args.returns_rate, args.workers, True, say)
        new["returns"]["measured"] = st
        cost = new["returns"]["parts"] = return_cost.bench_return_cost(min(args.runs, 3))
        say(f"returns: taken apart: worker Python {cost['worker_python_us']} µs per return by batch size, "
            f"hand-off {cost['handoff_us']} µs per request and reply by batch size")

    def run_jobstore() -> None:
        new["jobstore"] = jobstore.bench_jobstore(["sqlite", "postgres"], [1, 2, 4],
                                                  5_000 if args.quick else 20_000, say)
        new["jobstore"]["measured"] = st

    def run_reliability() -> None:
        new["reliability"] = reliability.bench_reliability(args.reliability_minions, min(args.runs, 3), args.soak,
                                                           say)
        new["reliability"]["measured"] = st

    def run_metrics() -> None:
        new["metrics"] = metrics_cost.bench_metrics(say)
        new["metrics"]["measured"] = st

    def run_api_rest() -> None:
        new["api_rest"] = api_rest.bench_api_rest(min(args.real), args.runs, 20 if args.quick else 100, say)
        new["api_rest"]["measured"] = st

    def run_api_events() -> None:
        rate, clients, secs = args.events.split(",")
        new["api_events"] = api_events.bench_api_events(int(rate), int(clients), float(secs), say)
        new["api_events"]["measured"] = st

    if "throughput" in args.sections and "real" not in args.sections:
        args.real = [min(args.real)]
    if "throughput" in args.sections and "swarm" not in args.sections:
        args.sizes, args.storm_sizes = [args.throughput_size], []
    wanted = {"startup": "startup" in args.sections, "real": bool({"real", "throughput"} & args.sections),
              "salt": "salt" in args.sections, "swarm": bool({"swarm", "throughput"} & args.sections)}
    wanted["zmqfloor"] = "zmqfloor" in args.sections
    wanted["returns"] = "returns" in args.sections
    wanted["jobstore"] = "jobstore" in args.sections
    wanted["reliability"] = "reliability" in args.sections
    wanted["metrics"] = "metrics" in args.sections
    wanted["api_rest"] = "api_rest" in args.sections
    wanted["api_events"] = "api_events" in args.sections
    for name, fn in (("startup", run_startup), ("real", run_real), ("salt", run_salt), ("swarm", run_swarm),
                     ("zmqfloor", run_zmqfloor), ("returns", run_returns), ("jobstore", run_jobstore),
                     ("reliability", run_reliability),
                     ("metrics", run_metrics), ("api_rest", run_api_rest), ("api_events", run_api_events)):
        if wanted[name]:
            sections.append((name, fn))
    failures = []
    for name, fn in sections:
        say(f"bench: --- {name} ---")
        try:
            fn()
        except Exception as exc:  # one failing section must not lose the others' results
            failures.append(f"{name}: {exc.__class__.__name__}: {exc}")
            say(f"bench: section {name} FAILED: {exc}")
            traceback.print_exc()
    new["load_end"] = os.getloadavg()[0]
    if failures:
        new["failures"] = failures
    out_dir = Path(args.out_dir)
    old = {}
    if not args.fresh and (out_dir / "results.json").exists():
        try:
            old = json.loads((out_dir / "results.json").read_text())
        except ValueError:
            old = {}
    results = merge(old, new)
    if not failures:
        results.pop("failures", None)
    if os.environ.get("RX_BENCH_PATCHES"):
        new["patches"] = os.environ["RX_BENCH_PATCHES"].split(",")
        path = out_dir / "results-patched.json"
        runs = json.loads(path.read_text()) if path.exists() else []
        path.write_text(json.dumps([*runs, new], indent=2, sort_keys=True) + "\n")
        say(f"wrote {path}")
    elif args.no_write:
        print(json.dumps(new, indent=2))
    else:
        write_results(results, out_dir)
    for row in evaluate(new if os.environ.get("RX_BENCH_PATCHES") else results):
        say(f"target: {row['target']}: {row['measured']} -> {({True: 'met', False: 'MISSED', None: '-'})[row['met']]}")
    if failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
