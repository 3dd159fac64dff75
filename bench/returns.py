"""Returns/s the master sustains and its CPU per return, with load from a generator that costs the master
nothing extra (issue 15): pre-authenticated sessions in another process send pre-sealed returns.

    python -m bench.returns -n 1000 --jobs 20                  # as fast as the master takes them
    python -m bench.returns -n 1000 --jobs 20 --rate 4000      # offered at 4,000 returns/s
    python -m bench.returns -n 1000 --jobs 20 --profile        # py-spy samples mworker-0 meanwhile

A sandbox master with the minions' keys accepted; the generator process (`--generator`, driven over
stdin/stdout as bench/swarm.py's children are) opens one DEALER per minion and runs the real `_auth`
handshake once for each (the swarm's keys, bench/.keycache).  The benchmark publishes J `test.ping`
jobs to those minions (nobody is subscribed: nothing runs); the generator seals every return as a
minion's link does (`seal_request`, then the request frame) before the clock starts, then sends them:
each minion at most `window` requests in flight, paced at `rate` returns/s or as fast as the replies
come.  A reply "unavailable" or "busy" is sent again, as a minion would; every other reply is opened
and counted.  A client subscribed to the bus counts the return events meanwhile.

Measured: returns/s from the first send to the last reply; the master's CPU (utime + stime of every
master process, from /proc) from just before the first send until the bus relayed the last event,
per process and per stored return; returns lost = returns sent - returns in the job store.  With
`profile`, py-spy samples mworker-0 while the returns are sent (samples of a running thread only) and
the top functions by own and cumulative samples go into the results (bench/pyspy.py).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter, deque
from pathlib import Path
from typing import Any, Callable

import zmq

from rx.transport import messages as m
from rx.transport.codec import NETWORK_MAX_OBJECTS, DecodeError, decode, encode
from rx.transport.errors import ErrorKind, ProtocolError
from rx.transport.handshake import finish_auth, start_auth
from rx.transport.messages import ClearRequest, JobReturn
from rx.transport.replies import ErrorReply, is_error
from rx.transport.secure import Rejected, open_reply, seal_request
from tests.support.procs import comm, cpu_seconds
from tests.support.sandbox import load_master, master_public_key

from .pyspy import Profiler
from .swarm import KeyCache, prepare_keys, raise_nofile, swarm_ids

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
PREFIX = "ret-"
RETRY = frozenset({ErrorKind.UNAVAILABLE, ErrorKind.INTERNAL})
"""Replies after which a minion sends the same return again."""
RESEND_AFTER = 10.0
"""Seconds without a reply after which a request is sent again (as a minion's request timeout)."""
BURST = 0.005
"""A paced generator may send this many seconds' worth of returns at once (after a late wake-up)."""


# ---------------------------------------------------------------- the generator (another process)

class Item:
    """One request: its frame, and what checking its reply needs."""

    __slots__ = ("frame", "req", "key", "pending", "renew")

    def __init__(self, frame: bytes, req: Any = None, key: bytes = b"", pending: Any = None,
                 renew: Callable[[], "Item"] | None = None) -> None:
        self.frame, self.req, self.key, self.pending = frame, req, key, pending
        self.renew = renew
        """What to send instead when no reply came in time: a new `_auth` (the master answers each one once,
        so the same bytes again are refused as a replay), as a minion does."""


class Engine:
    """Requests over many DEALER sockets from one thread: at most `window` in flight per socket, an optional
    pace, replies matched to requests by an envelope id (as the minion's request client does)."""

    def __init__(self, socks: list[zmq.Socket]) -> None:
        self.socks = socks
        self.poller = zmq.Poller()
        for s in socks:
            self.poller.register(s, zmq.POLLIN)
        self.index = {s: i for i, s in enumerate(socks)}
        self.rids = itertools.count(1)

    def run(self, queues: list[deque], handle: Callable[[Item, bytes], Item | None], *, window: int = 1,
            rate: float = 0.0, timeout: float = 600.0) -> dict:
        """Send every queued item and handle its reply (`handle` returns an item to send again, or None)."""
        socks, inflight = self.socks, {}
        per, offered = [0] * len(socks), [False] * len(socks)
        ready: deque[int] = deque()

        def offer(i: int) -> None:
            if not offered[i] and queues[i] and per[i] < window:
                ready.append(i)
                offered[i] = True
        for i in range(len(socks)):
            offer(i)
        left = sum(map(len, queues))
        st = {"sent": 0, "resent": 0, "first": 0.0, "last": 0.0, "unfinished": 0}
        tokens, last, next_scan = 0.0, time.perf_counter(), time.monotonic() + 1.0
        deadline = time.monotonic() + timeout
        while left and time.monotonic() < deadline:
            now = time.perf_counter()
            if rate:
                tokens, last = min(tokens + (now - last) * rate, max(1.0, rate * BURST)), now
            budget = int(tokens) if rate else len(ready)
            sent = 0
            while ready and sent < budget:
                i = ready.popleft()
                offered[i] = False
                item = queues[i].popleft()
                rid = next(self.rids).to_bytes(8, "big")
                socks[i].send_multipart([rid, b"", item.frame])
                inflight[rid] = (i, item, time.monotonic())
                per[i] += 1
                sent += 1
                offer(i)
            if sent:
                tokens -= sent if rate else 0
                st["sent"] += sent
                st["first"] = st["first"] or time.time()
            wait = 0 if ready and (not rate or tokens >= 1) else (1 if rate else 50)
            for sock, _ev in self.poller.poll(wait):
                while True:
                    try:
                        frames = sock.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    entry = inflight.pop(frames[0], None) if len(frames) == 3 else None
                    if entry is None:
                        continue  # a late reply to a request sent again
                    i, item, _t = entry
                    per[i] -= 1
                    again = handle(item, frames[2])
                    if again is not None:
                        queues[i].append(again)
                        st["resent"] += 1
                    else:
                        left -= 1
                        st["last"] = time.time()
                    offer(i)
            if time.monotonic() >= next_scan:
                next_scan = time.monotonic() + 1.0
                for rid, (i, item, t) in list(inflight.items()):
                    if time.monotonic() - t >= RESEND_AFTER:
                        del inflight[rid]
                        per[i] -= 1
                        queues[i].append(item.renew() if item.renew else item)
                        st["resent"] += 1
                        offer(i)
        st["unfinished"] = left
        return st


def _error_kind(obj: Any) -> ErrorKind | None:
    try:
        return ErrorReply.from_wire(obj).kind
    except ProtocolError:
        return None


class Generator:
    """N minions' sessions and sockets in this process."""

    def __init__(self, config_dir: str, count: int, start: int, prefix: str) -> None:
        self.cfg = load_master(config_dir)
        self.ids = swarm_ids(count, start, prefix)
        self.identities = KeyCache().identities(start, count)
        self.master_pub = master_public_key(self.cfg)
        self.ctx = zmq.Context()
        self.ctx.set(zmq.MAX_SOCKETS, 2 * count + 64)
        self.socks = []
        for _ in self.ids:
            s = self.ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 0)
            s.setsockopt(zmq.SNDHWM, 0)
            s.setsockopt(zmq.RCVHWM, 0)
            s.connect(f"tcp://127.0.0.1:{self.cfg.ret_port}")
            self.socks.append(s)
        self.engine = Engine(self.socks)
        self.sessions: list[Any] = [None] * count
        self.queues: list[deque] = []
        self.counts: Counter = Counter()

    def authenticate(self) -> dict:
        """The `_auth` handshake once per minion (a few at a time, as the master would see a fleet start)."""
        def item(i: int) -> Item:
            pending = start_auth(self.identities[i], self.ids[i])
            return Item(encode(ClearRequest(m.AUTH, pending.request.to_wire()).to_wire()), key=i.to_bytes(4, "big"),
                        pending=pending, renew=lambda: item(i))
        failed: list[str] = []

        def handle(it: Item, body: bytes) -> Item | None:
            i = int.from_bytes(it.key, "big")
            reply = decode(body, max_objects=NETWORK_MAX_OBJECTS)
            if is_error(reply):
                if _error_kind(reply) in RETRY:
                    time.sleep(0.01)
                    return item(i)
                failed.append(f"{self.ids[i]}: {reply}")
                return None
            outcome = finish_auth(it.pending, reply, self.master_pub)
            if outcome.session is None:
                failed.append(f"{self.ids[i]}: {outcome.status}")
            self.sessions[i] = outcome.session
            return None
        t0 = time.perf_counter()
        st = self.engine.run([deque([item(i)]) for i in range(len(self.ids))], handle, timeout=300.0)
        return {"authenticated": sum(s is not None for s in self.sessions), "failed": failed[:5],
                "seconds": time.perf_counter() - t0, "unfinished": st["unfinished"]}

    def seal(self, jids: list[str], size: int = 0) -> dict:
        """Every return sealed and framed now, before the clock starts (jobs in order, minions interleaved)."""
        t0 = time.perf_counter()
        self.queues = [deque() for _ in self.ids]
        value: Any = True if not size else "x" * size
        for jid in jids:
            for i, (minion_id, session) in enumerate(zip(self.ids, self.sessions)):
                now = time.time()
                load = JobReturn(jid=jid, fun="test.ping", fun_args=[], retcode=0, success=True, ret=value,
                                 start_time=now, end_time=now + 0.001).to_wire()
                req = seal_request(session.request_key, minion_id, session.serial, m.RETURN, load)
                self.queues[i].append(Item(encode(req.to_wire()), req, session.request_key))
        return {"sealed": sum(map(len, self.queues)), "seconds": time.perf_counter() - t0}

    def _handle(self, it: Item, body: bytes) -> Item | None:
        c = self.counts
        try:
            reply = decode(body, max_objects=NETWORK_MAX_OBJECTS)
            if is_error(reply):  # not sealed: the master refused it before opening it ("busy", "auth")
                kind = _error_kind(reply)
                if kind in RETRY:
                    c["retried"] += 1
                    return it
                c[f"refused_{kind.value if kind else '?'}"] += 1
                return None
            inner = open_reply(it.key, it.req, reply)
        except (DecodeError, Rejected) as exc:
            c[f"bad_reply_{exc.__class__.__name__}"] += 1
            return None
        if not is_error(inner):
            c["acked"] += 1
            return None
        kind = _error_kind(inner)
        if kind is ErrorKind.DUPLICATE:
            c["duplicate"] += 1
        elif kind in RETRY:
            c["retried"] += 1
            return it
        else:
            c[f"refused_{kind.value if kind else '?'}"] += 1
        return None

    def send(self, window: int, rate: float, timeout: float) -> dict:
        self.counts = Counter()
        c0 = time.process_time()
        st = self.engine.run(self.queues, self._handle, window=window, rate=rate, timeout=timeout)
        return {**st, **self.counts, "cpu_s": time.process_time() - c0}

    def close(self) -> None:
        self.ctx.destroy(linger=0)


def _emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def generator_main(args: argparse.Namespace) -> int:
    """The generator process: commands on stdin (`seal`, `go`, `quit`), JSON lines on stdout."""
    raise_nofile()
    gen = Generator(args.master_config, args.n, args.start, args.prefix)
    try:
        _emit({"event": "ready", **gen.authenticate()})
        for line in sys.stdin:
            cmd = json.loads(line)
            if cmd["cmd"] == "seal":
                _emit({"event": "sealed", **gen.seal(cmd["jids"], cmd.get("size", 0))})
            elif cmd["cmd"] == "go":
                _emit({"event": "done", **gen.send(cmd["window"], cmd["rate"], cmd["timeout"])})
            else:
                break
    finally:
        gen.close()
    return 0


class GeneratorProcess:
    """The parent's handle on a generator process."""

    def __init__(self, config_dir: str | Path, n: int, prefix: str = PREFIX, start: int = 0) -> None:
        argv = [sys.executable, "-m", f"{__package__ or 'bench'}.returns", "--generator", "--master-config",
                str(config_dir), "-n", str(n), "--start", str(start), "--prefix", prefix]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT,
                                     env=dict(os.environ, PYTHONUNBUFFERED="1"), start_new_session=True)

    def ask(self, cmd: dict | None, expect: str, timeout: float = 600.0) -> dict:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        if cmd is not None:
            self.proc.stdin.write(json.dumps(cmd) + "\n")
            self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the generator exited ({self.proc.wait(timeout)}) before `{expect}`")
        ev = json.loads(line)
        if ev.get("event") != expect:
            raise RuntimeError(f"the generator said {ev}, not {expect}")
        return ev

    def close(self) -> None:
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
            self.proc.stdin.close()
        except (OSError, ValueError):
            pass
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# ---------------------------------------------------------------- the benchmark (this process)

class EventCount:
    """A client on the master's bus, counting return events (in a thread with its own event loop)."""

    def __init__(self, cfg: Any) -> None:
        from rx.transport.events import JOB_PREFIX
        from rx.transport.roles import ipc_url, open_transport
        self.count = 0
        self._stop = threading.Event()
        ready = threading.Event()

        async def watch() -> None:
            transport = open_transport()
            try:
                source = await transport.event_source(ipc_url(cfg.event_pub_ipc), ipc_url(cfg.event_pull_ipc),
                                                       [JOB_PREFIX])
                ready.set()
                while not self._stop.is_set():
                    self.count += sum(1 for tag, _ in await source.batch(0.2) if "/ret/" in tag)
                source.close()
            finally:
                ready.set()
                transport.close()
        self._thread = threading.Thread(target=asyncio.run, args=(watch(),), daemon=True)
        self._thread.start()
        ready.wait(30)

    def wait_for(self, n: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while self.count < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.count

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)


def _publish(cfg_dir: str, ids: list[str], jobs: int) -> list[str]:
    from rx.client.local import AsyncLocalClient

    async def run() -> list[str]:
        async with AsyncLocalClient(cfg_dir) as client:
            out = []
            for _ in range(jobs):
                pub = await client.run_job(ids, "test.ping", tgt_type="list")
                if sorted(pub.minions) != sorted(ids):
                    raise RuntimeError(f"job {pub.jid} expects {len(pub.minions)} minions, not {len(ids)}")
                out.append(pub.jid)
            return out
    return asyncio.run(run())


def _stored(cfg: Any, jids: list[str]) -> int:
    from rx.master.store import open_stores, store_config

    async def count() -> int:
        stores = open_stores(store_config(cfg))
        try:
            return sum([len(await stores.jobs.returns(jid)) for jid in jids])
        finally:
            await stores.aclose()
    return asyncio.run(count())


def cpu_by_process(pids: list[int]) -> dict[str, float]:
    out: dict[str, float] = {}
    for pid in pids:
        name = comm(pid) or str(pid)
        out[name] = out.get(name, 0.0) + cpu_seconds([pid])
    return out


def _cpu_by_thread(pids: list[int]) -> dict[str, float]:
    """CPU seconds of every thread of these processes, by "process/thread" name: libzmq names its I/O thread
    ZMQbg/IO/0, so the request server's proxy (its main thread) and its socket I/O are told apart."""
    out: dict[str, float] = {}
    for pid in pids:
        proc = comm(pid) or str(pid)
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/comm") as f:
                    name = f.read().strip()
                with open(f"/proc/{pid}/task/{tid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            key = f"{proc}/{'main' if tid == str(pid) else name}"
            out[key] = out.get(key, 0.0) + (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def measure(box: Any, n: int, jobs: int, *, rate: float = 0.0, window: int = 1, size: int = 0,
            profile: bool = False, timeout: float = 600.0, say: Callable[[str], None] = lambda s: None) -> dict:
    """One run against `box` (a Sandbox whose master is running): n minions' returns to `jobs` jobs."""
    cfg = box.cfg
    prepare_keys(cfg, n, 0, PREFIX)
    gen = GeneratorProcess(box.master_dir, n)
    events = None
    try:
        auth = gen.ask(None, "ready", timeout)
        if auth["authenticated"] != n:
            raise RuntimeError(f"only {auth['authenticated']} of {n} minions authenticated: {auth['failed']}")
        jids = _publish(str(box.master_dir), swarm_ids(n, 0, PREFIX), jobs)
        sealed = gen.ask({"cmd": "seal", "jids": jids, "size": size}, "sealed", timeout)
        events = EventCount(cfg)
        pids = box.master_pids()
        profiler = Profiler.start(worker_pid(pids)) if profile else None
        time.sleep(0.5)  # the master idle again after the publishes (and py-spy attached)
        c0, th0, t0 = cpu_by_process(pids), _cpu_by_thread(pids), time.perf_counter()
        done = gen.ask({"cmd": "go", "window": window, "rate": rate, "timeout": timeout}, "done", timeout + 60)
        seen = events.wait_for(done.get("acked", 0), 10.0)
        c1, th1, wall = cpu_by_process(pids), _cpu_by_thread(pids), time.perf_counter() - t0
        prof = profiler.stop() if profiler is not None else None
    finally:
        if events is not None:
            events.close()
        gen.close()
    stored = _stored(cfg, jids)
    sent = n * jobs
    master_cpu = {k: round(c1.get(k, 0.0) - v, 3) for k, v in c0.items()}
    threads = {k: round(th1.get(k, 0.0) - th0.get(k, 0.0), 2) for k in th1}
    cpu = sum(master_cpu.values())
    span = (done["last"] - done["first"]) if done["last"] else 0.0
    res = {"n": n, "jobs": jobs, "rate_offered": rate, "window": window, "size": size, "sent": sent,
           "stored": stored, "lost": sent - stored, "acked": done.get("acked", 0), "duplicate": done.get("duplicate", 0),
           "retried": done.get("retried", 0), "resent": done["resent"], "unfinished": done["unfinished"],
           "refused": {k: v for k, v in done.items() if k.startswith(("refused_", "bad_reply_"))},
           "events": seen, "seconds": round(span, 3), "returns_per_s": round(stored / span, 1) if span else 0.0,
           "master_cpu_s": round(cpu, 3), "master_cpu_us_per_return": round(1e6 * cpu / stored, 1) if stored else None,
           "master_cpu_by_process": master_cpu, "master_cpu_by_thread": {k: v for k, v in threads.items() if v >= 0.01},
           "window_s": round(wall, 3), "generator_cpu_s": round(done["cpu_s"], 3),
           "auth_s": round(auth["seconds"], 2), "seal_s": round(sealed["seconds"], 2), "load": os.getloadavg()[0]}
    if prof is not None:
        res["profile"] = prof
    say(f"returns: {n} minions x {jobs} jobs{f' at {rate:.0f}/s' if rate else ''}: {stored}/{sent} stored "
        f"({res['lost']} lost), {res['returns_per_s']:.0f} returns/s, master CPU {res['master_cpu_s']:.2f}s = "
        f"{res['master_cpu_us_per_return']} us/return ({', '.join(f'{k} {v:.2f}' for k, v in master_cpu.items())})")
    return res


def worker_pid(pids: list[int]) -> int:
    from rx.master.daemon import process_name
    name = process_name("mworker-0")
    pid = next((p for p in pids if comm(p) == name), None)
    if pid is None:
        raise RuntimeError("no mworker-0 among the master's processes")
    return pid


# ---------------------------------------------------------------- the `returns` section of python -m bench

def _summary(runs: list[dict]) -> dict:
    def med(key: str) -> float | None:
        xs = sorted(r[key] for r in runs if r.get(key) is not None)
        return xs[len(xs) // 2] if xs else None
    return {"returns_per_s": med("returns_per_s"), "master_cpu_us_per_return": med("master_cpu_us_per_return"),
            "lost": sum(r["lost"] for r in runs), "sent": sum(r["sent"] for r in runs), "runs": runs}


def bench_returns(n: int, jobs: int, runs: int, rate: float, workers: int | None, profile: bool,
                  say: Callable[[str], None]) -> dict:
    """As fast as the master takes them (`runs` runs), then paced at `rate`, then (with `profile`) one
    more run as fast as it takes them with py-spy on mworker-0, each on the same sandbox master."""
    from rx.config import default_workers
    from .sandbox import BenchSandbox
    box = BenchSandbox(workers=workers)
    out: dict[str, Any] = {"n": n, "jobs": jobs, "workers": workers or default_workers()}
    try:
        box.prepare_pki()
        box.start_master()
        out["max"] = _summary([measure(box, n, jobs, say=say) for _ in range(runs)])
        if rate:
            out["paced"] = {"rate": rate, **_summary([measure(box, n, jobs, rate=rate, say=say)
                                                      for _ in range(runs)])}
        if profile:
            r = measure(box, n, jobs, profile=True, say=say)
            out["profile"] = {**r.pop("profile"), "run": r}
    finally:
        box.close()
    return out


TARGET_US_PER_RETURN = 100.0
TARGET_RETURNS_PER_S = 10_000.0


def target_rows(res: dict | None) -> list[dict]:
    """Issue 15's two targets on the master's return path, as rows of the Targets table."""
    s = (res or {}).get("max")
    us, rate = (s["master_cpu_us_per_return"], s["returns_per_s"]) if s else (None, None)
    return [{"target": f"master CPU per return <= {TARGET_US_PER_RETURN:.0f} µs (issue 15)",
             "measured": f"{us:.0f} µs" if us is not None else "not measured",
             "met": None if us is None else us <= TARGET_US_PER_RETURN},
            {"target": f"returns/s the master sustains >= {TARGET_RETURNS_PER_S:,.0f}, none lost (issue 15)",
             "measured": f"{rate:,.0f}/s, {s['lost']} lost" if s else "not measured",
             "met": None if rate is None else rate >= TARGET_RETURNS_PER_S and s["lost"] == 0}]


def render(res: dict | None) -> list[str]:
    """The RESULTS.md section."""
    from .pyspy import render as render_profile
    if not res:
        return []
    st = res.get("measured", {})
    L = ["## Returns the master sustains (pre-sealed returns from pre-authenticated sessions)", "",
         f"{res['n']:,} minions' sessions (the real `_auth` once each) in one generator process send their returns "
         f"to {res['jobs']} `test.ping` jobs the master published ({res['n'] * res['jobs']:,} returns a run), sealed "
         f"before the clock starts; {res['workers']} MWorkers; measured {st.get('date', '?')} at commit "
         f"`{st.get('commit', '?')}` (bench/returns.py).", "",
         "| load | returns/s | master CPU per return | returns lost | master CPU by process (one run) |",
         "|---|---|---|---|---|"]
    for key, label in (("max", "as fast as the master takes them"), ("paced", "paced")):
        s = res.get(key)
        if not s:
            continue
        if key == "paced":
            label = f"offered at {s['rate']:,.0f}/s"
        by = s["runs"][len(s["runs"]) // 2]["master_cpu_by_process"]
        L.append(f"| {label} | {s['returns_per_s']:,.0f} | {s['master_cpu_us_per_return']:.0f} µs | "
                 f"{s['lost']} of {s['sent']:,} | " + ", ".join(f"{k} {v:.2f}s" for k, v in by.items()) + " |")
    L += ["", "Returns/s: returns stored / seconds from the first send to the last reply (median of the runs). "
          "Master CPU: utime + stime of every master process (/proc) from just before the first send until the "
          "bus relayed the last return event to a subscribed client, divided by the returns stored. Lost: sent "
          "and not in the job store.", ""]
    from .return_cost import render_line
    L += render_line(res.get("parts"))
    s = res.get("max")
    if s and s["runs"][len(s["runs"]) // 2].get("master_cpu_by_thread"):
        run = s["runs"][len(s["runs"]) // 2]
        per = {k: 1e6 * v / run["stored"] for k, v in run["master_cpu_by_thread"].items() if run["stored"]}
        L += ["Master CPU per return by thread (the median run as fast as the master takes them; /proc/PID/task; "
              "`ZMQbg/IO/0` is libzmq's I/O thread, `main` the process's own code, in the request server the C "
              "proxy): " + ", ".join(f"{k} {v:.0f} µs" for k, v in sorted(per.items(), key=lambda kv: -kv[1])) + ".",
              ""]
    prof = res.get("profile")
    if prof:
        run = prof.get("run", {})
        L += render_profile(prof, f"Profile of mworker-0 during one more run ({run.get('returns_per_s', 0):,.0f} "
                                  f"returns/s, {run.get('master_cpu_us_per_return') or 0:.0f} µs of master CPU per return "
                                  "with the profiler attached)")
    return L


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.returns", description=__doc__.split("\n\n")[0])
    p.add_argument("-n", type=int, default=1000, help="minions (sessions) sending returns")
    p.add_argument("--jobs", type=int, default=20, help="jobs published; every minion returns each")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--rate", type=float, default=0.0, help="also a run paced at this many returns/s")
    p.add_argument("--workers", type=int, help="master worker_processes (default: one per CPU)")
    p.add_argument("--profile", action="store_true", help="one more run with py-spy on mworker-0")
    p.add_argument("--generator", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--master-config", help=argparse.SUPPRESS)
    p.add_argument("--start", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--prefix", default=PREFIX, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.generator:
        sys.exit(generator_main(a))
    res = bench_returns(a.n, a.jobs, a.runs, a.rate, a.workers, a.profile,
                        lambda s: print(f"[{time.strftime('%H:%M:%S')}] {s}", file=sys.stderr, flush=True))
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
