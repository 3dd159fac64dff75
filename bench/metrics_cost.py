"""What the master's Prometheus metrics cost (`python -m bench.metrics_cost`; the `metrics` section of
`python -m bench`): master CPU per return and per publish for the metric updates, the once-a-second
snapshot write, a scrape, the same updates through prometheus_client's own objects (single-process and
multiprocess mode, for comparison), and the event bus relay's CPU per event with drop counting against
the plain C `zmq.proxy` it replaced.  No daemons: the handlers' metric calls run in a loop in this process;
the relays run in a child process each, on IPC sockets in a temporary directory."""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import subprocess
import sys
import tempfile
import time
from time import perf_counter
from types import SimpleNamespace
from typing import Any, Callable

import zmq

from rx.master.context import WorkerContext
from rx.master.metrics.exposition import render
from rx.master.metrics.process import WorkerMetrics, return_outcome
from rx.master.metrics.shared import read_totals, reset
from rx.master.minion_cmds import handle_return
from rx.transport import zmq_devices
from rx.transport.jidclock import JidClock
from rx.transport.messages import JobReturn
from tests.support.procs import cpu_seconds

RETURNS = 200_000


def _per_call_us(fn: Callable[[], None], n: int) -> float:
    """Median of 5 runs of `n` calls, in µs per call (the loop's own cost taken off)."""
    def run(f: Callable[[], None]) -> float:
        t = perf_counter()
        for _ in range(n):
            f()
        return perf_counter() - t
    empty = min(run(lambda: None) for _ in range(3))
    runs = sorted(run(fn) for _ in range(5))
    return max(0.0, runs[2] - empty) / n * 1e6


def _return(fun: str = "test.ping") -> JobReturn:
    now = time.time()
    return JobReturn(jid=JidClock(None).next(), fun=fun, fun_args=[], retcode=0, success=True, ret=True,
                     start_time=now - 0.01, end_time=now)


def updates_per_return(n: int) -> dict[str, float]:
    """The metric calls one return makes in an MWorker (mworker._handler, minion_cmds.handle_return)."""
    m = WorkerMetrics()
    ret = _return()
    lane, store = m.lanes["sealed"].observe, m.store_writes["store_return"].observe

    def one_return() -> None:
        start = perf_counter()
        s = perf_counter()
        store(perf_counter() - s)
        m.returned(ret, return_outcome(ret))
        lane(perf_counter() - start)

    def one_publish() -> None:
        s = perf_counter()
        m.store_writes["create_job"].observe(perf_counter() - s)
        m.published("test.ping", 10)
    return {"return_us": _per_call_us(one_return, n), "publish_us": _per_call_us(one_publish, n // 4)}


class _Store:
    async def store_return(self, jid: str, minion_id: str, data: dict, *, expected_only: bool = True) -> bool:
        return True


class _Sink:
    async def fire(self, tag: str, data: dict) -> None:
        return None


class _NoMetrics(WorkerMetrics):
    def returned(self, ret: JobReturn, outcome: str) -> None:
        return None


def handle_return_ab(n: int) -> dict[str, float]:
    """handle_return itself (store and bus stubbed out) with the metrics and with them doing nothing: the
    difference is what the metrics add to it, the extra coroutine frame around the store call included."""
    ret = _return()

    def ctx(metrics: WorkerMetrics) -> Any:
        return WorkerContext(identity=None, stores=SimpleNamespace(jobs=_Store()), root_key="",  # type: ignore
                             settings=None, events=_Sink(), publisher=None, metrics=metrics)  # type: ignore

    async def loop(c: Any) -> float:
        t = perf_counter()
        for _ in range(n):
            await handle_return(c, "m1", ret)
        return perf_counter() - t

    async def main() -> dict[str, float]:
        on, off = ctx(WorkerMetrics()), ctx(_NoMetrics())
        with_m, without = [], []
        for _ in range(5):
            with_m.append(await loop(on))
            without.append(await loop(off))
        a, b = sorted(with_m)[2] / n * 1e6, sorted(without)[2] / n * 1e6
        return {"with_us": a, "without_us": b}
    return asyncio.run(main())


def flush_and_scrape(workers: int = 8, funs: int = 200) -> dict[str, float]:
    """A busy master's worst case: every worker has seen `funs` functions with two outcomes each."""
    with tempfile.TemporaryDirectory() as d:
        reset(d)
        recorders = []
        for i in range(workers):
            m = WorkerMetrics(d, f"mworker-{i}")
            m.pid = 1000 + i
            for f in range(funs):
                r = _return(f"mod.fun{f}")
                m.published(r.fun, 10)
                m.returned(r, "success")
                m.returned(r, "failed")
            recorders.append(m)
        t = perf_counter()
        for m in recorders:
            m.flush()
        flush_ms = (perf_counter() - t) / workers * 1e3
        t = perf_counter()
        text = render(read_totals(d), {})
        scrape_ms = (perf_counter() - t) * 1e3
    return {"flush_ms": flush_ms, "scrape_ms": scrape_ms, "scrape_bytes": len(text), "workers": workers,
            "funs": funs}


PROM = """
import os, sys, tempfile, time
if sys.argv[1] == "multiprocess":
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp()
from prometheus_client import Counter, Histogram
c = Counter("r", "d", ["fun", "outcome"]); h1 = Histogram("l", "d"); h2 = Histogram("d", "d")
h3 = Histogram("q", "d", ["lane"]); h4 = Histogram("s", "d", ["op"])
n = int(sys.argv[2]); t = time.perf_counter()
for _ in range(n):
    c.labels("test.ping", "success").inc(); h1.observe(0.01); h2.observe(0.002)
    h3.labels("sealed").observe(0.0003); h4.labels("store_return").observe(0.0001)
print((time.perf_counter() - t) / n * 1e6)
"""


def prometheus_client_per_return(n: int) -> dict[str, float]:
    out = {}
    for mode in ("single", "multiprocess"):
        cp = subprocess.run([sys.executable, "-c", PROM, mode, str(n)], capture_output=True, text=True, check=True)
        out[f"{mode}_us"] = float(cp.stdout)
    return out


def _counting(pull: str, pub: str) -> None:
    zmq_devices.event_relay(pull, pub, lambda n: None)


def _c_proxy(pull: str, pub: str) -> None:
    zmq_devices.event_relay(pull, pub)


def relay_cpu_per_event(n: int) -> dict[str, float]:
    """CPU of the relay process per event (its zmq I/O threads included), `n` events to one reading subscriber."""
    out = {}
    mp = multiprocessing.get_context("fork")
    for name, target in (("xpub_counting", _counting), ("c_proxy", _c_proxy)):
        with tempfile.TemporaryDirectory() as d:
            pull, pub = f"ipc://{d}/pull", f"ipc://{d}/pub"
            proc = mp.Process(target=target, args=(pull, pub), daemon=True)
            proc.start()
            ctx = zmq.Context()
            sub, push = ctx.socket(zmq.SUB), ctx.socket(zmq.PUSH)
            sub.setsockopt(zmq.SUBSCRIBE, b"")
            sub.setsockopt(zmq.RCVHWM, 0)
            sub.connect(pub)
            push.connect(pull)
            while True:  # until the subscription is live
                push.send_multipart([b"rx/bench/sync", b"\x80"])
                if sub.poll(100):
                    break
            while sub.poll(200):
                sub.recv_multipart()
            cpu0, t0, got = cpu_seconds([proc.pid]), perf_counter(), 0
            frame = b"\x81\xa6return\xc3"
            for i in range(n):
                push.send_multipart([b"rx/job/20240101000000000000/ret/m1", frame])
                while sub.poll(0):
                    sub.recv_multipart()
                    got += 1
            while got < n and sub.poll(5000):
                sub.recv_multipart()
                got += 1
            out[f"{name}_us"] = (cpu_seconds([proc.pid]) - cpu0) / n * 1e6
            out[f"{name}_events_per_s"] = n / (perf_counter() - t0)
            out[f"{name}_received"] = got
            for s in (sub, push):
                s.close(linger=0)
            ctx.term()
            proc.kill()
            proc.join()
    return out


def bench_metrics(say: Callable[[str], None] = lambda s: None, returns: int = RETURNS) -> dict[str, Any]:
    res: dict[str, Any] = {"returns": returns}
    res["updates"] = updates_per_return(returns)
    say(f"metrics: updates per return {res['updates']['return_us']:.2f} µs, per publish "
        f"{res['updates']['publish_us']:.2f} µs")
    res["handle_return"] = handle_return_ab(returns // 4)
    say(f"metrics: handle_return {res['handle_return']['with_us']:.2f} µs with metrics, "
        f"{res['handle_return']['without_us']:.2f} µs without")
    res["flush_scrape"] = flush_and_scrape()
    res["prometheus_client"] = prometheus_client_per_return(returns // 4)
    res["relay"] = relay_cpu_per_event(returns)
    say(f"metrics: relay {res['relay']['xpub_counting_us']:.2f} µs CPU/event counting drops, "
        f"{res['relay']['c_proxy_us']:.2f} µs with zmq.proxy")
    return res


def render_section(res: dict | None) -> list[str]:
    """The RESULTS.md section."""
    if not res:
        return []
    u, h, f, p, r = res["updates"], res["handle_return"], res["flush_scrape"], res["prometheus_client"], res["relay"]
    measured = res.get("measured", {})
    return ["## Metrics: what counting costs the master", "",
            f"Master CPU for the Prometheus metrics (bench/metrics_cost.py), measured {measured.get('date', '?')} at "
            f"commit `{measured.get('commit', '?')}`; medians of 5 runs of {res['returns']:,} calls.", "",
            "| what | cost |", "|---|---|",
            f"| metric updates of one return (request and store timings, returns counter, latency, duration) | "
            f"{u['return_us']:.2f} µs |",
            f"| metric updates of one publish | {u['publish_us']:.2f} µs |",
            f"| handle_return (store and bus stubbed) with / without metrics | {h['with_us']:.2f} / "
            f"{h['without_us']:.2f} µs |",
            f"| the same five updates through prometheus_client, one process / multiprocess mode | "
            f"{p['single_us']:.2f} / {p['multiprocess_us']:.2f} µs |",
            f"| one worker's snapshot write ({f['funs']} functions × 2 outcomes; at most once a second) | "
            f"{f['flush_ms']:.2f} ms |",
            f"| a scrape: {f['workers']} workers' snapshots summed and rendered ({f['scrape_bytes']:,} bytes) | "
            f"{f['scrape_ms']:.1f} ms |",
            f"| event bus relay CPU per event: counting drops (XPUB) / plain zmq.proxy (PUB) | "
            f"{r['xpub_counting_us']:.2f} / {r['c_proxy_us']:.2f} µs |", ""]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.metrics_cost", description=__doc__.splitlines()[0])
    p.add_argument("--returns", type=int, default=RETURNS)
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    a = p.parse_args(argv)
    res = bench_metrics(lambda s: print(s, file=sys.stderr), a.returns)
    print(json.dumps(res, indent=2) if a.json else "\n".join(render_section(res)))


if __name__ == "__main__":
    main()
