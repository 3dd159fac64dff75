"""Returns/s into each job store backend with N writer processes (as N MWorkers store returns).

    python -m bench.jobstore                          # sqlite and postgres, 1, 2, 4 and 8 writers
    python -m bench.jobstore --workers 1,4 --returns 2000 --backends sqlite

Each run stores `--returns` returns (about `--size` bytes each) of `--jobs` jobs through the JobStore
interface (`store_return`, the path a minion's return takes after it is decrypted), spread over the
writers, each a process with its own store, started together; the figure is returns stored / wall time.
PostgreSQL is a real server started in a temp dir (tests/support/postgres.py; fsync off, as the tests run
it: a production server with fsync on is slower per commit).  Prints one line per run and a JSON summary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from rx.master.store import JobRecord, StoreConfig, open_stores
from rx.transport.ids import new_jid
from rx.transport.messages import Job
from tests.support.postgres import start_server


def _config(backend: str, root: Path, dsn: str) -> StoreConfig:
    return StoreConfig(pki_dir=str(root / "pki"), cachedir=str(root / "cache"), job_store_backend=backend,
                       postgres_dsn=dsn)


async def _setup(cfg: StoreConfig, jids: list[str], minions: list[str]) -> None:
    stores = open_stores(cfg)
    try:
        await stores.jobs.prepare()
        for jid in jids:
            job = Job(jid=jid, fun="test.echo", arg=["x"], kwarg={}, tgt="*", tgt_type="glob", ts=time.time())
            await stores.jobs.create_job(JobRecord(job, minions, []))
    finally:
        await stores.aclose()


def _writer(cfg: StoreConfig, work: list[tuple[str, str]], size: int, start: multiprocessing.Event,
            done: multiprocessing.Queue) -> None:
    async def run() -> int:
        stores = open_stores(cfg)
        try:
            await stores.jobs.has_return(work[0][0], work[0][1])  # connect before the clock starts
            start.wait()
            stored = 0
            for jid, mid in work:
                data = {"id": mid, "jid": jid, "fun": "test.echo", "fun_args": ["x"], "retcode": 0, "success": True,
                        "return": "x" * size, "start_time": time.time(), "end_time": time.time()}
                stored += await stores.jobs.store_return(jid, mid, data)
            return stored
        finally:
            await stores.aclose()
    done.put(asyncio.run(run()))


def measure(backend: str, dsn: str, workers: int, returns: int, jobs: int, size: int) -> dict:
    root = Path(tempfile.mkdtemp(prefix="rx-bench-store-"))
    try:
        cfg = _config(backend, root, dsn)
        per_job = max(1, returns // jobs)
        minions = [f"minion-{i:06d}" for i in range(per_job)]
        jids = [new_jid(time.time() - 1 + i / 1e6) for i in range(jobs)]
        asyncio.run(_setup(cfg, jids, minions))
        pairs = [(jid, mid) for jid in jids for mid in minions]
        ctx = multiprocessing.get_context("fork")
        start, done = ctx.Event(), ctx.Queue()
        procs = [ctx.Process(target=_writer, args=(cfg, pairs[w::workers], size, start, done)) for w in range(workers)]
        for p in procs:
            p.start()
        time.sleep(1.0)  # every writer connected (a benchmark, not a test: the clock starts at `start`)
        t0 = time.perf_counter()
        start.set()
        stored = sum(done.get(timeout=600) for _ in procs)
        elapsed = time.perf_counter() - t0
        for p in procs:
            p.join(30)
        return {"backend": backend, "workers": workers, "returns": stored, "seconds": round(elapsed, 3),
                "returns_per_s": round(stored / elapsed, 1)}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def bench_jobstore(backends: list[str], workers: list[int], returns: int, say: Callable[[str], None],
                   jobs: int = 20, size: int = 200) -> dict[str, Any]:
    """The `jobstore` section of `python -m bench`: {backend: {writers: figure}} (a skipped backend: its reason)."""
    out: dict[str, Any] = {"returns": returns, "jobs": jobs, "size": size, "backends": {}}
    for backend in backends:
        server = None
        try:
            if backend == "postgres":
                server, why = start_server()
                if server is None:
                    out["backends"][backend] = {"skipped": why}
                    say(f"jobstore: postgres skipped: {why}")
                    continue
            runs = {}
            for n in workers:
                dsn = server.new_database() if server is not None else ""
                r = measure(backend, dsn, n, returns, jobs, size)
                runs[str(n)] = r
                say(f"jobstore: {backend} {n} writer(s): {r['returns_per_s']:.0f} returns/s")
            out["backends"][backend] = runs
        finally:
            if server is not None:
                server.close()
    return out


def render(res: dict | None) -> list[str]:
    """The RESULTS.md section."""
    if not res:
        return []
    workers = sorted({int(n) for runs in res["backends"].values() if "skipped" not in runs for n in runs})
    L = ["## Job store: returns/s into each backend", "",
         f"{res['returns']:,} returns of {res['size']} bytes over {res['jobs']} jobs, stored through the JobStore "
         "interface by N writer processes at once (as N MWorkers do); measured "
         f"{res.get('measured', {}).get('date', '?')} at commit `{res.get('measured', {}).get('commit', '?')}`. "
         "PostgreSQL: a local server started for the run (fsync off, as in the tests).", "",
         "| backend | " + " | ".join(f"{n} writer{'s' if n > 1 else ''}" for n in workers) + " |",
         "|---|" + "---|" * len(workers)]
    for backend, runs in res["backends"].items():
        if "skipped" in runs:
            L.append(f"| {backend} | skipped: {runs['skipped']} |" + " |" * (len(workers) - 1))
            continue
        cells = [f"{runs[str(n)]['returns_per_s']:,.0f}/s" if str(n) in runs else "—" for n in workers]
        L.append(f"| {backend} | " + " | ".join(cells) + " |")
    return L + [""]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.jobstore", description=__doc__.splitlines()[0])
    p.add_argument("--backends", default="sqlite,postgres")
    p.add_argument("--workers", default="1,2,4,8", help="writer processes, comma-separated")
    p.add_argument("--returns", type=int, default=20_000, help="returns stored per run")
    p.add_argument("--jobs", type=int, default=20, help="jobs the returns are spread over")
    p.add_argument("--size", type=int, default=200, help="bytes of each return's value")
    a = p.parse_args(argv)
    server = None
    results = []
    try:
        for backend in a.backends.split(","):
            dsn = ""
            if backend == "postgres":
                server, why = start_server()
                if server is None:
                    print(f"postgres: skipped: {why}", file=sys.stderr)
                    continue
            for workers in (int(w) for w in a.workers.split(",")):
                if server is not None and backend == "postgres":
                    dsn = server.new_database()
                r = measure(backend, dsn, workers, a.returns, a.jobs, a.size)
                print(f"{r['backend']:9s} {r['workers']:2d} writer(s): {r['returns']} returns in {r['seconds']:.2f}s "
                      f"= {r['returns_per_s']:.0f}/s", file=sys.stderr, flush=True)
                results.append(r)
    finally:
        if server is not None:
            server.close()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
