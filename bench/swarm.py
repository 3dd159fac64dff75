"""The minion swarm: N simulated minions in one process, using the real minion.

Every simulated minion is a real `rx.minion.core.Minion` with its own Ed25519
identity and its own DEALER and SUB sockets (made from one shared zmq context),
so the master sees N real connections and runs the real auth handshake,
signature check, decryption, target self-match, de-duplication and sealed
return for each.  Only the function execution differs: `InlineExecutor` runs
test.ping / test.echo / test.sleep inline in the event loop instead of forking
a child process per job.

Keys are made ahead of time and cached in bench/.keycache (one file of raw
Ed25519 seeds, key i belongs to minion i), and filed as accepted straight into
the master's pki_dir, so setup is fast and no minion waits in "pending".

Each minion costs about 4 file descriptors (a zmq mailbox and a TCP connection
for each of its two sockets); the hard RLIMIT_NOFILE caps how many fit in one
process, so `SwarmGroup` spreads a large swarm over several processes.

    python -m bench.swarm --master-config DIR -n 1000 [--ping 3] [--exit]

Library use: `SwarmGroup` (child processes, what the benchmark runner uses) or
`Swarm` / `ThreadedSwarm` (in this process, what the CI smoke test uses).
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import gc
import json
import logging
import math
import os
import queue
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq
import zmq.asyncio

from rx.config import MasterConfig, MinionConfig
from rx.minion.core import Minion
from rx.minion.executor import RunningJob
from rx.transport.crypto import Identity, ensure_private_dir, use_sodium_aead
from rx.transport.messages import Job
from rx.transport.roles import open_transport
from tests.support.procs import rss_kb
from tests.support.sandbox import file_accepted_key, load_master, master_public_key

log = logging.getLogger("rx.bench.swarm")

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
KEYCACHE_DIR = BENCH_DIR / ".keycache"
SEED_BYTES = 32

FDS_PER_MINION = 6
"""Measured: 1,211 descriptors for 200 minions: DEALER + SUB, one zmq mailbox (eventfd) and one TCP
connection each, and the SUB's link monitor (the catch-up watcher, as in production), two PAIR sockets with
a mailbox each."""
ZMQ_SOCKETS_PER_MINION = 4
"""DEALER, SUB and the monitor's two PAIR sockets: the zmq context's socket limit (past it libzmq answers
EMFILE, "Too many open files", whatever the descriptors)."""
FD_RESERVE = 300
DEFAULT_PREFIX = "swarm-"


# ---------------------------------------------------------------- limits

def raise_nofile() -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard limit; returns (soft, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft, hard


def max_minions_per_process() -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    return max(1, (hard - FD_RESERVE) // FDS_PER_MINION)


def processes_needed(n: int, cap: int | None = None) -> int:
    return max(1, math.ceil(n / (cap or max_minions_per_process())))


# ---------------------------------------------------------------- keys

def swarm_ids(n: int, start: int = 0, prefix: str = DEFAULT_PREFIX) -> list[str]:
    return [f"{prefix}{i:05d}" for i in range(start, start + n)]


class KeyCache:
    """Ed25519 seeds on disk, key i for minion i; grown on demand, read by index."""

    def __init__(self, directory: Path = KEYCACHE_DIR) -> None:
        self.path = directory / "ed25519.seeds"

    def ensure(self, n: int) -> None:
        """At least n keys on disk (locked, so parallel test runs can share the cache)."""
        if self.path.exists() and self.path.stat().st_size // SEED_BYTES >= n:
            return
        ensure_private_dir(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            have = size // SEED_BYTES
            if size % SEED_BYTES:  # a torn write from a killed run: drop the partial key
                os.ftruncate(fd, have * SEED_BYTES)
            if have < n:
                os.write(fd, b"".join(Identity.generate().private_bytes() for _ in range(n - have)))
        finally:
            os.close(fd)  # also releases the lock

    def identities(self, start: int, count: int) -> list[Identity]:
        self.ensure(start + count)
        with open(self.path, "rb") as f:
            f.seek(start * SEED_BYTES)
            raw = f.read(count * SEED_BYTES)
        return [Identity.from_bytes(raw[i:i + SEED_BYTES]) for i in range(0, len(raw), SEED_BYTES)]


def accept_keys(master_cfg: MasterConfig, ids: list[str], identities: list[Identity]) -> None:
    """File the swarm's public keys as accepted on the master (as `rx-key -a` would)."""
    for minion_id, ident in zip(ids, identities):
        file_accepted_key(master_cfg, minion_id, ident.public)


def prepare_keys(master_cfg: MasterConfig, n: int, start: int = 0, prefix: str = DEFAULT_PREFIX) -> float:
    """Make (or load) n key pairs and accept them on the master; returns the seconds it took."""
    t0 = time.perf_counter()
    ids = swarm_ids(n, start, prefix)
    accept_keys(master_cfg, ids, KeyCache().identities(start, n))
    return time.perf_counter() - t0


def swarm_grains(minion_id: str) -> dict:
    """Small fixed grains (real minions compute theirs; the swarm passes these in)."""
    return {"id": minion_id, "host": minion_id, "kernel": "Linux", "os": "Swarm", "os_family": "Swarm",
            "roles": ["swarm"], "swarm": True}


# ---------------------------------------------------------------- inline executor

class InlineExecutor:
    """The Executor interface (`run`, `running`, `kill`, `kill_all`, `stop`), run in the event loop.

    test.ping, test.echo, test.version and test.sleep (an asyncio sleep, so one
    minion's sleep does not stall the swarm) are supported; anything else
    returns retcode 1 like an unknown function.
    """

    def __init__(self) -> None:
        self.running: dict[str, RunningJob] = {}
        self._stops: dict[str, asyncio.Event] = {}

    async def run(self, job: Job) -> dict:
        fun, arg = job.fun, list(job.arg)
        if fun == "test.ping":
            return {"return": True, "retcode": 0, "success": True}
        if fun == "test.echo":
            text = arg[0] if arg else job.kwarg.get("text", "")
            return {"return": text, "retcode": 0, "success": True}
        if fun == "test.version":
            import rx
            return {"return": rx.__version__, "retcode": 0, "success": True}
        if fun == "test.sleep":
            try:
                seconds = float(arg[0] if arg else job.kwarg.get("length", 0))
            except (TypeError, ValueError):
                return {"return": "ERROR: length must be a number of seconds", "retcode": 1, "success": False}
            return await self._sleep(job, seconds)
        return {"return": f"'{fun}' is not available in the swarm.", "retcode": 1, "success": False}

    async def _sleep(self, job: Job, seconds: float) -> dict:
        stop = asyncio.Event()
        self._stops[job.jid] = stop
        self.running[job.jid] = RunningJob(job.jid, job.fun, os.getpid(), time.time())
        try:
            await asyncio.wait_for(stop.wait(), max(0.0, seconds))
        except asyncio.TimeoutError:
            return {"return": True, "retcode": 0, "success": True}
        finally:
            self.running.pop(job.jid, None)
            self._stops.pop(job.jid, None)
        return {"return": "ERROR: the job process was killed by SIGTERM before returning", "retcode": 1,
                "success": False}

    def kill(self, jid: str, sig: int = signal.SIGTERM, why: str = "") -> bool:
        stop = self._stops.get(jid)
        if stop is None:
            return False
        stop.set()
        return True

    def kill_all(self) -> None:
        for jid in list(self._stops):
            self.kill(jid)

    async def stop(self, grace: float) -> None:
        """The minion is stopping: end every job now (a simulated job has nothing to finish)."""
        self.kill_all()


# ---------------------------------------------------------------- subscription check

def _own_socket_inodes() -> set[str]:
    out = set()
    fd_dir = "/proc/self/fd"
    for name in os.listdir(fd_dir):
        try:
            link = os.readlink(f"{fd_dir}/{name}")
        except OSError:
            continue
        if link.startswith("socket:["):
            out.add(link[8:-1])
    return out


def established_to(port: int, own_only: bool = True) -> int:
    """ESTABLISHED TCP connections to `port` (by default only this process's), via `ss`."""
    try:
        out = subprocess.run(["ss", "-Htne", "state", "established", f"( dport = :{port} )"],
                             capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return -1
    if not own_only:
        return sum(1 for line in out.splitlines() if line.strip())
    inodes = []
    for line in out.splitlines():
        i = line.find("ino:")
        if i >= 0:
            inodes.append(line[i + 4:].split(None, 1)[0])
    mine = _own_socket_inodes()
    return sum(1 for ino in inodes if ino in mine)


# ---------------------------------------------------------------- the swarm (one process)

@dataclass(frozen=True)
class MasterAddress:
    host: str
    ret_port: int
    publish_port: int
    master_pub: bytes
    """The master's public key, pinned ahead of time (as master_finger would)."""

    @classmethod
    def from_config(cls, cfg: MasterConfig, host: str | None = None) -> "MasterAddress":
        if host is None:
            host = "127.0.0.1" if cfg.interface in ("0.0.0.0", "") else ("::1" if cfg.interface == "::"
                                                                         else cfg.interface)
        return cls(host, cfg.ret_port, cfg.publish_port, master_public_key(cfg))


class Swarm:
    """N real Minion objects on one event loop and one zmq context."""

    def __init__(self, master: MasterAddress, ids: list[str], identities: list[Identity], *,
                 timeout: float = 5.0, workdir: Path | None = None, grains: Any = swarm_grains) -> None:
        if len(ids) != len(identities):
            raise ValueError("one identity per id")
        self.master = master
        self.ids = ids
        self.identities = identities
        self.timeout = timeout
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="rx-swarm-"))
        self.grains = grains
        self.minions: list[Minion] = []
        self.tasks: list[asyncio.Task] = []
        self.errors: list[str] = []
        self.zctx: zmq.asyncio.Context | None = None
        self.t_start = 0.0

    def __len__(self) -> int:
        return len(self.ids)

    async def start(self) -> None:
        raise_nofile()
        self.zctx = zmq.asyncio.Context()
        self.zctx.set(zmq.MAX_SOCKETS, max(1024, ZMQ_SOCKETS_PER_MINION * len(self.ids) + 256))
        self.transport = open_transport(shared=self.zctx)
        pki = self.workdir / "pki"
        ensure_private_dir(pki)
        (pki / "master.pub").write_bytes(self.master.master_pub)
        base = dict(master=self.master.host, master_port=self.master.ret_port, publish_port=self.master.publish_port,
                    root_dir=str(self.workdir), pki_dir=str(pki), cachedir="",  # no cachedir: return spools in memory
                    timeout=self.timeout, log_level="error")
        loop = asyncio.get_running_loop()
        for minion_id, ident in zip(self.ids, self.identities):
            grains = self.grains(minion_id) if callable(self.grains) else dict(self.grains or {})
            m = Minion(MinionConfig(id=minion_id, **base), identity=ident, grains=grains, executor=InlineExecutor(),
                       persist_seen=False)
            self.minions.append(m)
        self.t_start = time.time()
        for m in self.minions:
            self.tasks.append(loop.create_task(self._run_one(m)))

    async def _run_one(self, m: Minion) -> None:
        assert self.zctx is not None
        try:
            await m.run(self.transport)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a dead simulated minion is a finding, not a crash of the swarm
            self.errors.append(f"{m.cfg.id}: {exc.__class__.__name__}: {exc}")
            log.exception("swarm minion %s died", m.cfg.id)

    def authenticated(self) -> int:
        return sum(1 for m in self.minions if m.session is not None)

    def subscribed(self) -> int:
        return established_to(self.master.publish_port)

    def status(self, with_subscribed: bool = True) -> dict:
        return {"n": len(self.ids), "authenticated": self.authenticated(),
                "subscribed": self.subscribed() if with_subscribed else None, "errors": len(self.errors)}

    async def stop(self) -> None:
        for t in self.tasks:
            t.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()
        if self.zctx is not None:
            self.zctx.destroy(linger=0)
            self.zctx = None
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


class ThreadedSwarm:
    """A Swarm on its own event loop in a background thread (for synchronous callers such as tests)."""

    def __init__(self, master_cfg: MasterConfig, n: int, *, start: int = 0, prefix: str = DEFAULT_PREFIX,
                 timeout: float = 5.0, accept: bool = True) -> None:
        if n > max_minions_per_process():
            raise ValueError(f"{n} minions do not fit in one process; use SwarmGroup")
        self.ids = swarm_ids(n, start, prefix)
        identities = KeyCache().identities(start, n)
        if accept:
            accept_keys(master_cfg, self.ids, identities)
        self.swarm = Swarm(MasterAddress.from_config(master_cfg), self.ids, identities, timeout=timeout)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="rx-swarm", daemon=True)

    def __enter__(self) -> "ThreadedSwarm":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _call(self, coro: Any, timeout: float | None = None) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def start(self) -> None:
        self._thread.start()
        self._call(self.swarm.start(), 60)

    def status(self, with_subscribed: bool = True) -> dict:
        async def get() -> dict:
            return self.swarm.status(with_subscribed=False)
        st = self._call(get(), 30)
        if with_subscribed:
            st["subscribed"] = self.swarm.subscribed()
        return st

    def wait_ready(self, timeout: float = 60.0) -> dict:
        """Wait until every minion is authenticated and connected to the publisher; returns the status."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.status()
            if st["authenticated"] == st["subscribed"] == st["n"]:
                return st
            if time.monotonic() > deadline:
                raise TimeoutError(f"swarm not ready after {timeout:g}s: {st}; errors: {self.swarm.errors[:3]}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self._thread.is_alive():
            try:
                self._call(self.swarm.stop(), 60)
            finally:
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join(10)
        if not self._loop.is_closed() and not self._loop.is_running():
            self._loop.close()


# ---------------------------------------------------------------- child process protocol

def _emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def _child(args: argparse.Namespace) -> int:
    """One swarm process, driven by a SwarmGroup: JSON status lines on stdout; stdin EOF or 'quit' stops it."""
    cfg = load_master(args.master_config)
    ids = swarm_ids(args.count, args.start, args.prefix)
    t_keys = time.perf_counter()
    identities = KeyCache().identities(args.start, args.count)
    swarm = Swarm(MasterAddress.from_config(cfg, args.master_host), ids, identities, timeout=args.timeout)
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    wanted = asyncio.Event()

    def on_stdin() -> None:
        line = sys.stdin.readline()
        if not line or line.strip() == "quit":
            done.set()
        elif line.strip() == "status":
            wanted.set()

    loop.add_reader(sys.stdin.fileno(), on_stdin)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done.set)
    await swarm.start()
    n = len(swarm)
    _emit({"event": "started", "t": swarm.t_start, "n": n, "setup_s": time.perf_counter() - t_keys,
           "pid": os.getpid()})
    t_auth_all = t_sub_all = None
    next_sub = next_report = 0.0
    auth = subscribed = 0
    try:
        while not done.is_set():
            now = time.monotonic()
            ready = t_auth_all is not None and t_sub_all is not None
            if not ready:
                auth = swarm.authenticated()
                if t_auth_all is None and auth == n:
                    t_auth_all = time.time()
                    _emit({"event": "auth_all", "t": t_auth_all})
                if t_sub_all is None and now >= next_sub:
                    subscribed = swarm.subscribed()
                    # The TCP table check (`ss`, a fork, and a readlink per descriptor) was a sixth of a swarm
                    # process's CPU in a 10,000-minion storm (its py-spy profile), taken from the master's cores:
                    # every sub_interval once all are authenticated (a minion subscribes once it holds a session),
                    # every report interval before.
                    next_sub = now + (args.sub_interval if t_auth_all is not None else args.interval)
                    if subscribed >= n:
                        t_sub_all = time.time()
                        _emit({"event": "sub_all", "t": t_sub_all})
                if t_auth_all is not None and t_sub_all is not None and not args.no_gc_freeze:
                    # 10,000 minions in one heap is a swarm artefact (a real minion's heap is tiny):
                    # keep the cyclic GC from re-scanning all of them during every measurement.
                    gc.collect()
                    gc.freeze()
            if wanted.is_set():
                # An explicit request (between measurements): count everything, including the TCP table.
                auth, subscribed = swarm.authenticated(), swarm.subscribed()
            if wanted.is_set() or now >= next_report:
                wanted.clear()
                # Once ready, report rarely and cheaply, so the swarm measures the minions, not itself.
                next_report = now + (args.interval if not ready else 10 * args.interval)
                _emit({"event": "status", "t": time.time(), "n": n, "authenticated": auth, "subscribed": subscribed,
                       "errors": len(swarm.errors), "first_error": swarm.errors[0] if swarm.errors else None,
                       "rss_kb": rss_kb(os.getpid())})
            await asyncio.sleep(0.05)
    finally:
        loop.remove_reader(sys.stdin.fileno())
        await swarm.stop()
        _emit({"event": "stopped", "t": time.time()})
    return 0


# ---------------------------------------------------------------- multi-process controller

class _ChildProc:
    def __init__(self, argv: list[str], start: int, count: int, env: dict) -> None:
        self.start_index = start
        self.count = count
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT,
                                     env=env, start_new_session=True)
        self.events: "queue.Queue[dict]" = queue.Queue()
        self.last: dict = {}
        self.started: dict = {}
        self.auth_all: float | None = None
        self.sub_all: float | None = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            kind = ev.get("event")
            if kind == "status":
                self.last = ev
            elif kind == "started":
                self.started = ev
            elif kind == "auth_all":
                self.auth_all = ev["t"]
            elif kind == "sub_all":
                self.sub_all = ev["t"]
            self.events.put(ev)

    def send(self, line: str) -> None:
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass


class SwarmGroup:
    """A swarm of n minions over as many child processes as the fd limit requires (or `procs`)."""

    def __init__(self, master_config_dir: str | Path, n: int, *, procs: int | None = None,
                 prefix: str = DEFAULT_PREFIX, timeout: float = 5.0, log_level: str = "error",
                 interval: float = 1.0, sub_interval: float = 0.25, gc_freeze: bool = True) -> None:
        self.config_dir = str(master_config_dir)
        self.cfg = load_master(self.config_dir)
        self.n = n
        self.procs = max(procs or 1, processes_needed(n))
        self.prefix = prefix
        self.timeout = timeout
        self.log_level = log_level
        self.interval = interval
        self.sub_interval = sub_interval
        self.gc_freeze = gc_freeze
        self.children: list[_ChildProc] = []
        self.keys_s = 0.0

    def prepare(self) -> float:
        """Make/load the key pairs and accept them on the master; returns seconds."""
        self.keys_s = prepare_keys(self.cfg, self.n, 0, self.prefix)
        return self.keys_s

    def start(self) -> None:
        module = f"{__package__ or 'bench'}.swarm"
        per = math.ceil(self.n / self.procs)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        for i in range(self.procs):
            start, count = i * per, min(per, self.n - i * per)
            if count <= 0:
                break
            argv = [sys.executable, "-m", module, "--child", "--master-config", self.config_dir, "--start",
                    str(start), "-n", str(count), "--prefix", self.prefix, "--timeout", str(self.timeout),
                    "--log-level", self.log_level, "--interval", str(self.interval),
                    "--sub-interval", str(self.sub_interval)] + ([] if self.gc_freeze else ["--no-gc-freeze"])
            self.children.append(_ChildProc(argv, start, count, env))

    def pids(self) -> list[int]:
        return [c.proc.pid for c in self.children]

    def alive(self) -> bool:
        return all(c.proc.poll() is None for c in self.children)

    def status(self) -> dict:
        st = {"n": self.n, "procs": len(self.children), "authenticated": 0, "subscribed": 0, "errors": 0,
              "rss_kb": 0, "first_error": None}
        for c in self.children:
            for key in ("authenticated", "subscribed", "errors", "rss_kb"):
                st[key] += max(0, c.last.get(key) or 0)
            st["first_error"] = st["first_error"] or c.last.get("first_error")
        started = [c.started.get("t") for c in self.children]
        st["t_start"] = min(started) if all(started) else None
        st["t_auth_all"] = max(c.auth_all for c in self.children) if all(c.auth_all for c in self.children) else None
        st["t_sub_all"] = max(c.sub_all for c in self.children) if all(c.sub_all for c in self.children) else None
        return st

    def wait_started(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while not all(c.started for c in self.children):
            self._check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError("swarm processes did not start")
            time.sleep(0.05)

    def wait_ready(self, timeout: float = 300.0, on_status: Any = None) -> dict:
        """Until every minion is authenticated and connected to the publisher; returns the status."""
        deadline = time.monotonic() + timeout
        last_print = 0.0
        while True:
            self._check_alive()
            st = self.status()
            if st["t_auth_all"] and st["t_sub_all"]:
                return st
            if on_status and time.monotonic() - last_print >= 1.0:
                last_print = time.monotonic()
                on_status(st)
            if time.monotonic() > deadline:
                raise TimeoutError(f"swarm not ready after {timeout:g}s: {st}")
            time.sleep(0.05)

    def refresh(self, timeout: float = 30.0) -> dict:
        """Ask every child for a fresh status line and wait for it."""
        before = {id(c): c.last.get("t", 0) for c in self.children}
        for c in self.children:
            c.send("status")
        deadline = time.monotonic() + timeout
        while any(c.last.get("t", 0) == before[id(c)] for c in self.children) and time.monotonic() < deadline:
            self._check_alive()
            time.sleep(0.02)
        return self.status()

    def _check_alive(self) -> None:
        for c in self.children:
            if c.proc.poll() is not None:
                raise RuntimeError(f"swarm process {c.proc.pid} exited with {c.proc.returncode}")

    def stop(self, timeout: float = 30.0) -> None:
        for c in self.children:
            c.send("quit")
            try:
                if c.proc.stdin:
                    c.proc.stdin.close()
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        for c in self.children:
            try:
                c.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                c.proc.kill()
                c.proc.wait()
        self.children.clear()

    def __enter__(self) -> "SwarmGroup":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---------------------------------------------------------------- CLI

def _ping(cfg_dir: str, n: int, times: int, timeout: float) -> list[dict]:
    from rx.client.local import LocalClient
    out = []
    with LocalClient(cfg_dir) as client:
        for _ in range(times):
            t0 = time.perf_counter()
            got = client.cmd("*", "test.ping", timeout=timeout)
            out.append({"seconds": time.perf_counter() - t0, "returned": sum(1 for v in got.values() if v is True),
                        "lost": n - sum(1 for v in got.values() if v is True)})
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.swarm", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--master-config", required=True, help="the master's config dir (its pki_dir gets the keys)")
    p.add_argument("-n", type=int, default=100, help="number of minions (default 100)")
    p.add_argument("--procs", type=int, help="swarm processes (default: as few as the fd limit allows)")
    p.add_argument("--prefix", default=DEFAULT_PREFIX, help="minion id prefix (default swarm-)")
    p.add_argument("--timeout", type=float, default=5.0, help="minion request timeout (default 5)")
    p.add_argument("--master-host", help="address to connect to (default: from the master's interface)")
    p.add_argument("--log-level", default="error", choices=["debug", "info", "warning", "error", "critical"])
    p.add_argument("--ping", type=int, default=0, metavar="K", help="when ready, run test.ping K times via LocalClient")
    p.add_argument("--exit", action="store_true", help="exit when ready (after --ping) instead of running on")
    p.add_argument("--interval", type=float, default=1.0, help=argparse.SUPPRESS)
    p.add_argument("--sub-interval", type=float, default=0.25, help=argparse.SUPPRESS)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--no-gc-freeze", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--start", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--count", type=int, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s swarm[%(process)d] %(levelname)s %(name)s: %(message)s")
    if os.environ.get("RX_BENCH_PATCHES"):
        from .patched import apply
        log.warning("swarm: patches applied: %s", ", ".join(apply(target="swarm")) or "none")
    if args.child:
        args.count = args.count if args.count is not None else args.n
        use_sodium_aead()  # the crypto rx-minion uses (rx.minion.daemon)
        sys.exit(asyncio.run(_child(args)))
    soft, hard = raise_nofile()
    group = SwarmGroup(args.master_config, args.n, procs=args.procs, prefix=args.prefix, timeout=args.timeout,
                       log_level=args.log_level)
    print(f"swarm: {args.n} minions in {group.procs} process(es) (RLIMIT_NOFILE {soft}/{hard}, "
          f"<= {max_minions_per_process()} minions per process)", file=sys.stderr)
    keys_s = group.prepare()
    print(f"swarm: keys made and accepted in {keys_s:.2f}s", file=sys.stderr)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        group.start()
        group.wait_started()
        t0 = group.status()["t_start"]

        def show(st: dict) -> None:
            print(f"swarm: authenticated {st['authenticated']}/{st['n']}, subscribed {st['subscribed']}/{st['n']}, "
                  f"errors {st['errors']}", file=sys.stderr)
        st = group.wait_ready(on_status=show)
        print(f"swarm: all {args.n} authenticated after {st['t_auth_all'] - t0:.2f}s, all subscribed after "
              f"{st['t_sub_all'] - t0:.2f}s", file=sys.stderr)
        for r in _ping(args.master_config, args.n, args.ping, timeout=30.0) if args.ping else []:
            print(f"ping: {r['returned']}/{args.n} returned in {r['seconds']:.3f}s, lost {r['lost']}", file=sys.stderr)
        while not args.exit and not stop.is_set():
            stop.wait(5.0)
            show(group.refresh())
    except KeyboardInterrupt:
        pass
    finally:
        group.stop()


if __name__ == "__main__":
    main()
