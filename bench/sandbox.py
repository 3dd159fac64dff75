"""A sandbox rx master (temp root_dir, free loopback ports) and real rx-minion
processes for the benchmarks, plus process-tree memory helpers.

Readiness is observed, never slept for: the master is up when its pidfile and
IPC sockets exist, a minion when its start event is seen on the master's bus.
Every process started here is tracked and stopped by `close()` (and at exit).
"""

from __future__ import annotations

import atexit
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import yaml

from rx.client.events import EventWatch
from rx.config import MasterConfig, load_master_config
from rx.master.store.file_keys import FileKeyStore
from rx.transport.crypto import load_or_create_identity

DEADLINE = 60.0
_LIVE: set["Proc"] = set()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_ENTRY_POINTS = {"rx": "rx.client.cli", "rx-call": "rx.client.call", "rx-master": "rx.master.daemon",
                 "rx-minion": "rx.minion.daemon", "rx-key": "rx.client.keycli"}


def script(name: str) -> list[str]:
    """argv prefix for an installed entry point next to this interpreter (else `python -m`).

    With $RX_BENCH_PATCHES set, the entry point runs through bench/patched.py instead.
    """
    if os.environ.get("RX_BENCH_PATCHES"):
        return [sys.executable, "-m", "rx.bench.patched", f"{_ENTRY_POINTS[name]}:main"]
    installed = os.environ.get("RX_BENCH_VENV")
    if installed and (Path(installed) / "bin" / name).exists():
        return [str(Path(installed) / "bin" / name)]
    path = Path(sys.executable).parent / name
    if path.exists():
        return [str(path)]
    return [sys.executable, "-m", _ENTRY_POINTS[name]]


def installed_venv(repo: Path, venv: Path) -> Path:
    """A clean venv with rx installed from the checkout as a user would (`pip install .`, not editable),
    so the CLI is timed without this machine's editable finder and site hooks, as Salt is in its own venv.
    The rx package is reinstalled every run (the checkout may have changed); dependencies stay."""
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", str(repo)],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", "--no-deps",
                    "--force-reinstall", str(repo)], check=True, stdout=subprocess.DEVNULL)
    return venv


def wait_for(cond: Callable[[], Any], timeout: float = DEADLINE, what: str = "condition",
             interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


# ---------------------------------------------------------------- processes and memory

def children_of(pid: int) -> list[int]:
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    out += [int(p) for p in f.read().split()]
            except OSError:
                continue
    except OSError:
        pass
    return out


def proc_tree(pid: int) -> list[int]:
    """pid and all its descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        if os.path.exists(f"/proc/{p}"):
            out.append(p)
            todo += children_of(p)
    return out


def _status_kb(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_kb(pid: int) -> int:
    return _status_kb(pid, "VmRSS")


def pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


_CLK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time used so far by these processes."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            continue
    return total / _CLK


def tree_memory(pids: list[int]) -> dict:
    """Summed RSS and PSS of processes (RSS double-counts pages shared after fork; PSS does not)."""
    return {"procs": len(pids), "rss_mb": sum(rss_kb(p) for p in pids) / 1024,
            "pss_mb": sum(pss_kb(p) for p in pids) / 1024}


class Proc:
    """A tracked child process with its output in a log file; stop() ends it and its descendants."""

    def __init__(self, name: str, argv: list[str], log: Path, env: dict | None = None, cwd: str | None = None) -> None:
        self.name = name
        self.log = log
        self.fh = open(log, "ab")
        self.proc = subprocess.Popen(argv, stdout=self.fh, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                     stdin=subprocess.DEVNULL)
        self.started = time.time()
        _LIVE.add(self)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tree(self) -> list[int]:
        return proc_tree(self.pid) if self.alive() else []

    def stop(self, timeout: float = 15.0) -> int | None:
        descendants = self.tree()[1:]
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for p in descendants:  # only our own descendants, by pid
            try:
                os.kill(p, 0)
            except OSError:
                continue
            deadline = time.monotonic() + 5.0
            while time.monotonic() < deadline and os.path.exists(f"/proc/{p}") and _state(p) not in ("Z", "X", ""):
                time.sleep(0.05)
            if os.path.exists(f"/proc/{p}") and _state(p) not in ("Z", "X", ""):
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
        if not self.fh.closed:
            self.fh.close()
        _LIVE.discard(self)
        return self.proc.returncode

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


@atexit.register
def _stop_all() -> None:
    for p in list(_LIVE):
        p.stop(timeout=5.0)


# ---------------------------------------------------------------- the sandbox

class BenchSandbox:
    """A master under a temp root with free ports, and any number of real minions."""

    def __init__(self, workers: int | None = None, log_level: str = "warning", root: Path | None = None) -> None:
        self.root = root or Path(tempfile.mkdtemp(prefix="rxb-", dir="/tmp"))
        self.workers = workers
        self.log_level = log_level
        self.pub_port = free_port()
        self.ret_port = free_port()
        self.master_dir = self.root / "master-conf"
        self.master: Proc | None = None
        self.minions: dict[str, Proc] = {}
        self._cfg: MasterConfig | None = None

    # ------------------------------------------------------------ master

    def write_master_config(self, **overrides: Any) -> None:
        self.master_dir.mkdir(parents=True, exist_ok=True)
        conf = {"root_dir": str(self.root / "m"), "interface": "127.0.0.1", "publish_port": self.pub_port,
                "ret_port": self.ret_port, "log_level": self.log_level,
                **({"worker_processes": self.workers} if self.workers else {}),
                "keep_jobs_hours": 0, **overrides}
        (self.master_dir / "master").write_text(yaml.safe_dump(conf))
        self._cfg = None

    @property
    def cfg(self) -> MasterConfig:
        if self._cfg is None:
            self._cfg = load_master_config(str(self.master_dir))
        return self._cfg

    def prepare_pki(self) -> None:
        """Create the master's pki (keys are accepted into it before the master starts)."""
        if not (self.master_dir / "master").exists():
            self.write_master_config()
        asyncio.run(FileKeyStore(self.cfg.pki_dir).prepare())
        load_or_create_identity(Path(self.cfg.pki_dir), "master")

    def start_master(self, **overrides: Any) -> float:
        """Start rx-master; returns seconds from spawn until its sockets are up."""
        if not (self.master_dir / "master").exists() or overrides:
            self.write_master_config(**overrides)
        t0 = time.perf_counter()
        self.master = Proc("rx-master", [*script("rx-master"), "-c", str(self.master_dir)], self.root / "master.log")
        cfg = self.cfg
        paths = [cfg.pidfile, cfg.ret_ipc, cfg.event_pub_ipc, cfg.event_pull_ipc, cfg.publish_pull_ipc,
                 cfg.workers_ipc]

        def ready() -> bool:
            if self.master is not None and not self.master.alive():
                raise RuntimeError(f"rx-master exited early:\n{self.master.output()[-3000:]}")
            return all(os.path.exists(p) for p in paths)
        wait_for(ready, what="rx-master to be ready")
        # The workers connect to workers.ipc after it exists; prove the whole request path with the bus sync.
        EventWatch(cfg).close()
        return time.perf_counter() - t0

    def master_pids(self) -> list[int]:
        return self.master.tree() if self.master is not None else []

    def stop_master(self) -> None:
        if self.master is not None:
            self.master.stop()
            self.master = None

    # ------------------------------------------------------------ real minions

    def minion_dir(self, minion_id: str) -> Path:
        return self.root / "minions" / minion_id

    def start_minions(self, ids: list[str], timeout: float = 180.0) -> float:
        """Start real rx-minion processes (keys pre-accepted); returns seconds until all sent their start event."""
        store = FileKeyStore(self.cfg.pki_dir)
        asyncio.run(store.prepare())
        watch = EventWatch(self.cfg, "rx/minion/")
        t0 = time.perf_counter()
        try:
            for mid in ids:
                d = self.minion_dir(mid)
                d.mkdir(parents=True, exist_ok=True)
                conf = {"root_dir": str(d / "root"), "id": mid, "master": "127.0.0.1", "master_port": self.ret_port,
                        "publish_port": self.pub_port, "log_level": self.log_level, "auth_retry_max_seconds": 2}
                (d / "minion").write_text(yaml.safe_dump(conf))
                ident = load_or_create_identity(d / "root" / "etc" / "rx" / "pki" / "minion", "minion")
                asyncio.run(store.write("accepted", mid, ident.public))
                self.minions[mid] = Proc(mid, [*script("rx-minion"), "-c", str(d)], self.root / f"minion-{mid}.log")
            waiting = set(ids)
            deadline = time.monotonic() + timeout
            while waiting:
                left = deadline - time.monotonic()
                if left <= 0:
                    dead = [m for m in waiting if not self.minions[m].alive()]
                    raise TimeoutError(f"{len(waiting)} minions did not start (dead: {dead[:5]})")
                ev = watch.next(min(left, 1.0))
                if ev and ev[0].endswith("/start"):
                    waiting.discard(ev[0].split("/")[2])
        finally:
            watch.close()
        return time.perf_counter() - t0

    def minion_pids(self) -> dict[str, int]:
        return {m: p.pid for m, p in self.minions.items() if p.alive()}

    def stop_minions(self) -> None:
        procs = list(self.minions.values())
        for p in procs:
            if p.alive():
                p.proc.send_signal(signal.SIGTERM)
        for p in procs:
            p.stop()
        self.minions.clear()

    # ------------------------------------------------------------ CLIs

    def run(self, argv: list[str], timeout: float = 120.0) -> tuple[float, subprocess.CompletedProcess]:
        t0 = time.perf_counter()
        cp = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        return time.perf_counter() - t0, cp

    def rx(self, *args: str, timeout: float = 120.0) -> tuple[float, subprocess.CompletedProcess]:
        return self.run([*script("rx"), "-c", str(self.master_dir), *args], timeout=timeout)

    def close(self, keep: bool = False) -> None:
        self.stop_minions()
        self.stop_master()
        logs = os.environ.get("RX_BENCH_KEEP_LOGS")
        if logs:  # keep the daemons' logs of this sandbox for a post-mortem
            dest = Path(logs) / self.root.name
            dest.mkdir(parents=True, exist_ok=True)
            for log in self.root.glob("*.log"):
                shutil.copy2(log, dest / log.name)
        if not keep:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "BenchSandbox":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
