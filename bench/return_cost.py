"""The master's CPU per return taken apart (issue 15): what its Python costs with no zmq at all, and what one zmq
hand-off between two processes costs, each measured alone, so bench/RESULTS.md can say what bounds the figure of
bench/returns.py.

- `worker_python`: a worker's own handling of sealed returns (`handlers.dispatch_many`: decode, authenticate and
  open, validate, store in SQLite with one transaction per batch, count, seal the reply) in this process, real
  stores in a temporary directory, no zmq and no event bus (the events are built and handed to a sink that drops
  them); CPU seconds (`time.process_time`) per return, one return per call and in batches.
- `handoff`: a request and its reply between two processes over IPC, DEALER to DEALER as between the request
  server and a worker (libzmq I/O thread on each side); CPU of both processes (all threads) per round trip, one
  in flight (each message finds the other side asleep and wakes it) and in batches (the other side finds several).

    python -m bench.return_cost
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import tempfile
import time
from typing import Any

from tests.support.procs import cpu_seconds

ROUND_TRIPS = 20_000
RETURNS = 4_000
MINIONS = 500
BATCHES = (1, 64)


class _DropSink:
    """An event sink that drops what it is given (the bus is measured by `handoff`, not here)."""

    async def fire(self, tag: str, data: dict) -> None:
        return None

    async def fire_many(self, events: Any) -> None:
        return None


async def _worker_python(batch: int, returns: int = RETURNS, minions: int = MINIONS) -> float:
    from rx.master.context import WorkerContext, WorkerSettings
    from rx.master.handlers import dispatch_many
    from rx.master.store import JobRecord, StoreConfig, open_stores
    from rx.transport import messages as m
    from rx.transport.codec import encode
    from rx.transport.crypto import Identity
    from rx.transport.handshake import request_key
    from rx.transport.ids import new_jid
    from rx.transport.messages import Job, JobReturn
    from rx.transport.secure import seal_request

    with tempfile.TemporaryDirectory(prefix="rx-retcost-") as d:
        stores = open_stores(StoreConfig(pki_dir=f"{d}/pki", cachedir=f"{d}/cache"))
        try:
            await stores.prepare()
            session = await stores.session.current()
            ids = [f"m{i:05d}" for i in range(minions)]
            public = Identity.generate().public
            for minion_id in ids:
                await stores.keys.write("accepted", minion_id, public)
            frames, jids = [], []
            for _ in range(-(-returns // minions)):
                jid = new_jid()
                jids.append(jid)
                job = Job(jid=jid, fun="test.ping", arg=[], kwarg={}, tgt="*", tgt_type="glob", ts=time.time())
                await stores.jobs.create_job(JobRecord(job, ids))
                ret = JobReturn(jid, "test.ping", [], 0, True, True).to_wire()
                for minion_id in ids:
                    key = request_key(session.secret, session.serial, minion_id)
                    frames.append([encode(seal_request(key, minion_id, session.serial, m.RETURN, ret).to_wire())])
            frames = frames[:returns]
            ctx = WorkerContext(identity=Identity.generate(), stores=stores, root_key="", events=_DropSink(),
                                publisher=_DropSink(), settings=WorkerSettings(False, 300.0, 0, 4505, {}))
            start = time.process_time()
            for i in range(0, len(frames), batch):
                replies = await dispatch_many(ctx, frames[i:i + batch])
                if len(replies) != len(frames[i:i + batch]):
                    raise RuntimeError("dispatch_many left returns unanswered")
            cpu = time.process_time() - start
            stored = 0
            for jid in jids:
                stored += len(await stores.jobs.returns(jid))
            if stored != len(frames):
                raise RuntimeError(f"{stored} of {len(frames)} returns stored")
        finally:
            stores.close()
    return cpu / len(frames)


def worker_python(batch: int, returns: int = RETURNS, minions: int = MINIONS) -> float:
    """CPU seconds per return of `dispatch_many` on batches of `batch` sealed returns (see the module doc)."""
    return asyncio.run(_worker_python(batch, returns, minions))


def handoff(batch: int, round_trips: int = ROUND_TRIPS) -> float:
    """CPU seconds (both processes, every thread) per request and reply between two processes (module doc)."""
    import zmq
    url = f"ipc://{tempfile.mkdtemp(prefix='rx-handoff-')}/h.ipc"
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            ctx = zmq.Context()
            echo = ctx.socket(zmq.DEALER)
            echo.connect(url)
            while (msg := echo.recv()) != b"quit":
                echo.send(msg)
            code = 0
        finally:
            os._exit(code)
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 1000)
    sock.bind(url)
    body = b"r" * 200
    sock.send(body)  # connected and warm
    sock.recv()
    mine = resource.getrusage(resource.RUSAGE_SELF)
    theirs = cpu_seconds([pid])
    for _ in range(round_trips // batch):
        for _ in range(batch):
            sock.send(body)
        for _ in range(batch):
            sock.recv()
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime + after.ru_stime - mine.ru_utime - mine.ru_stime) + cpu_seconds([pid]) - theirs
    sock.send(b"quit")
    os.waitpid(pid, 0)
    sock.close()
    ctx.term()
    return cpu / (round_trips // batch * batch)


def bench_return_cost(runs: int = 3) -> dict:
    """Medians over `runs` of each measurement, in µs."""
    def med(f: Any, arg: int) -> float:
        xs = sorted(f(arg) for _ in range(runs))
        return round(1e6 * xs[len(xs) // 2], 1)
    return {"worker_python_us": {str(b): med(worker_python, b) for b in BATCHES},
            "handoff_us": {str(b): med(handoff, b) for b in BATCHES}, "runs": runs}


def render_line(res: dict | None) -> list[str]:
    """The paragraph under the Returns table."""
    if not res:
        return []
    py, hop = res["worker_python_us"], res["handoff_us"]
    return [f"Taken apart (bench/return_cost.py, medians of {res['runs']}): an MWorker's own handling of a sealed "
            f"return (decode, open, validate, store in SQLite, seal the reply; no zmq, no bus) costs "
            f"{py['1']:.0f} µs of CPU one return per call and {py['64']:.0f} µs per return in batches of 64; a request "
            f"and its reply between two processes over IPC (DEALER to DEALER, as between the request server and a "
            f"worker) cost both processes together {hop['1']:.0f} µs of CPU when one is in flight (each message "
            f"wakes the other side's threads) and {hop['64']:.1f} µs when 64 go together.", ""]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.return_cost", description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3)
    print(json.dumps(bench_return_cost(p.parse_args(argv).runs), indent=2))


if __name__ == "__main__":
    main()
