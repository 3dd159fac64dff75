"""Salt 3007.8 side by side: the same `'*' test.ping` against the same number of
minions on loopback, and the same memory measurements.

Salt is installed into its own venv under the checkout (bench/.salt/venv,
gitignored; Salt's code is never committed).  `pip install salt==3007.8` from
PyPI builds Salt from its sdist without declaring its dependencies, so the
pinned Linux requirements that ship in that same sdist
(requirements/static/pkg/py3.X/linux.txt) are installed next to it.

The master and minions run as the current user (root) in a temp root_dir, on
free loopback ports, with auto_accept.  If Salt cannot be installed or started
the result says why, and the benchmark carries on without it.

    python -m bench.salt_compare -n 10,50 --runs 5
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from tests.support.daemon import Daemon, stop_all
from tests.support.procs import free_port, tree_memory, wait_for

SALT_VERSION = "3007.8"
BENCH_DIR = Path(__file__).resolve().parent
SALT_DIR = BENCH_DIR / ".salt"
VENV = SALT_DIR / "venv"
BIN = VENV / "bin"
MARKER = VENV / f".rx-bench-salt-{SALT_VERSION}"


class SaltUnavailable(Exception):
    """Salt could not be installed or started; the message says why."""


def _pip(*args: str, log: Path, timeout: float = 900) -> None:
    with open(log, "ab") as fh:
        fh.write(f"\n$ pip {' '.join(args)}\n".encode())
        fh.flush()
        cp = subprocess.run([str(BIN / "python"), "-m", "pip", *args], stdout=fh, stderr=subprocess.STDOUT,
                            timeout=timeout, stdin=subprocess.DEVNULL)
    if cp.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-8:]
        raise SaltUnavailable(f"pip {' '.join(args[:3])} failed (exit {cp.returncode}): " + " | ".join(tail))


def _requirements_from_sdist(log: Path) -> Path:
    """The pinned Linux requirements for this Python from Salt's own sdist."""
    sdist_dir = SALT_DIR / "sdist"
    sdist_dir.mkdir(parents=True, exist_ok=True)
    tarballs = list(sdist_dir.glob(f"salt-{SALT_VERSION}.tar.gz"))
    if not tarballs:
        _pip("download", "--no-deps", "--no-binary", ":all:", f"salt=={SALT_VERSION}", "-d", str(sdist_dir), log=log)
        tarballs = list(sdist_dir.glob(f"salt-{SALT_VERSION}.tar.gz"))
    if not tarballs:
        raise SaltUnavailable("could not download Salt's sdist to read its requirements")
    py = f"py{sys.version_info.major}.{sys.version_info.minor}"
    wanted = [f"salt-{SALT_VERSION}/requirements/static/pkg/{py}/linux.txt"]
    out = SALT_DIR / f"requirements-{py}-linux.txt"
    with tarfile.open(tarballs[0]) as tar:
        for name in wanted:
            try:
                member = tar.getmember(name)
            except KeyError:
                continue
            f = tar.extractfile(member)
            if f is not None:
                out.write_bytes(f.read())
                return out
    raise SaltUnavailable(f"Salt {SALT_VERSION} ships no pinned requirements for {py} on Linux")


def ensure_salt(log: Path | None = None) -> Path:
    """Install Salt into bench/.salt/venv if needed; returns the venv's bin dir or raises SaltUnavailable."""
    SALT_DIR.mkdir(parents=True, exist_ok=True)
    log = log or SALT_DIR / "install.log"
    if MARKER.exists() and _salt_works():
        return BIN
    if not (BIN / "python").exists():
        cp = subprocess.run([sys.executable, "-m", "venv", str(VENV)], capture_output=True, text=True)
        if cp.returncode != 0:
            raise SaltUnavailable(f"cannot create a venv: {cp.stderr.strip()[-500:]}")
    _pip("install", "-q", "--upgrade", "pip", log=log)
    _pip("install", "-q", f"salt=={SALT_VERSION}", log=log)
    _pip("install", "-q", "-r", str(_requirements_from_sdist(log)), log=log)
    if not _salt_works():
        raise SaltUnavailable(f"salt {SALT_VERSION} installed but `salt --version` fails; see {log}")
    MARKER.write_text(SALT_VERSION + "\n")
    return BIN


def _salt_works() -> bool:
    try:
        cp = subprocess.run([str(BIN / "salt"), "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return cp.returncode == 0 and SALT_VERSION in cp.stdout


# ---------------------------------------------------------------- a Salt sandbox

class SaltSandbox:
    def __init__(self, workers: int = 5) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="rxs-", dir="/tmp"))
        self.pub_port = free_port()
        self.ret_port = free_port()
        self.workers = workers
        self.master_dir = self.root / "master-conf"
        self.master: Daemon | None = None
        self.minions: dict[str, Daemon] = {}

    def start_master(self) -> float:
        self.master_dir.mkdir(parents=True)
        conf = {"root_dir": str(self.root / "m"), "interface": "127.0.0.1", "publish_port": self.pub_port,
                "ret_port": self.ret_port, "auto_accept": True, "user": "root", "worker_threads": self.workers,
                "log_level": "warning", "log_level_logfile": "warning",
                "file_roots": {"base": [str(self.root / "srv")]}, "pillar_roots": {"base": [str(self.root / "pil")]}}
        (self.master_dir / "master").write_text(yaml.safe_dump(conf))
        t0 = time.perf_counter()
        self.master = Daemon("salt-master", [str(BIN / "salt-master"), "-c", str(self.master_dir), "-l", "warning"],
                             self.root / "salt-master.log", reap=True)

        def up() -> bool:
            if not self.master.alive():
                raise SaltUnavailable(f"salt-master exited: {self.master.output()[-1500:]}")
            return _listening(self.ret_port) and _listening(self.pub_port)
        wait_for(up, timeout=120, what="salt-master to listen")
        return time.perf_counter() - t0

    def start_minions(self, ids: list[str], timeout: float = 300.0) -> float:
        t0 = time.perf_counter()
        for mid in ids:
            d = self.root / "minions" / mid
            d.mkdir(parents=True)
            conf = {"id": mid, "master": "127.0.0.1", "master_port": self.ret_port, "publish_port": self.pub_port,
                    "root_dir": str(d / "root"), "user": "root", "log_level": "warning",
                    "log_level_logfile": "warning", "enable_fqdns_grains": False}
            (d / "minion").write_text(yaml.safe_dump(conf))
            self.minions[mid] = Daemon(mid, [str(BIN / "salt-minion"), "-c", str(d), "-l", "warning"],
                                       self.root / f"minion-{mid}.log", reap=True)
        # Ready when every minion answers a ping (keys are auto-accepted on first contact).
        deadline = time.monotonic() + timeout
        while True:
            _, out, _rc = self.ping(timeout=10)
            if all(f"{mid}:" in out for mid in ids):
                return time.perf_counter() - t0
            if time.monotonic() > deadline:
                missing = [m for m in ids if f"{m}:" not in out]
                raise SaltUnavailable(f"{len(missing)} Salt minions never answered (e.g. {missing[:3]})")
            time.sleep(1.0)

    def ping(self, timeout: float = 30) -> tuple[float, str, int]:
        t0 = time.perf_counter()
        cp = subprocess.run([str(BIN / "salt"), "-c", str(self.master_dir), "*", "test.ping", "-t", str(int(timeout))],
                            capture_output=True, text=True, timeout=timeout + 60, stdin=subprocess.DEVNULL)
        return time.perf_counter() - t0, cp.stdout, cp.returncode

    def close(self) -> None:
        stop_all(self.minions.values())
        self.minions.clear()
        if self.master is not None:
            self.master.stop()
            self.master = None
        shutil.rmtree(self.root, ignore_errors=True)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


# ---------------------------------------------------------------- the measurement

def measure(sizes: list[int], runs: int = 5, workers: int = 5, idle_wait: float = 3.0,
            progress: Any = None) -> dict:
    """For each size: median wall time of `salt '*' test.ping`, and memory. Never raises for Salt's sake."""
    say = progress or (lambda msg: print(msg, file=sys.stderr))
    out: dict[str, Any] = {"version": SALT_VERSION, "available": False, "sizes": {}}
    try:
        say(f"salt: making sure Salt {SALT_VERSION} is installed in {VENV}")
        ensure_salt()
    except (SaltUnavailable, OSError, subprocess.TimeoutExpired) as exc:
        out["skipped"] = f"Salt {SALT_VERSION} could not be installed: {exc}"
        say(f"salt: SKIPPED: {out['skipped']}")
        return out
    out["available"] = True
    for n in sizes:
        box = SaltSandbox(workers=workers)
        res: dict[str, Any] = {"n": n}
        try:
            box.start_master()
            time.sleep(idle_wait)
            res["master_idle_no_minions"] = tree_memory(box.master.tree())
            ids = [f"salt-m{i:03d}" for i in range(n)]
            say(f"salt: starting {n} Salt minions")
            res["minions_start_s"] = box.start_minions(ids)
            times, failures = [], 0
            for _ in range(runs):
                dt, stdout, rc = box.ping()
                ok = rc == 0 and all(f"{mid}:" in stdout for mid in ids)
                failures += not ok
                times.append(dt)
            res["ping_s"] = statistics.median(times)
            res["ping_runs_s"] = times
            res["ping_failed_runs"] = failures
            say(f"salt: {n} minions: `salt '*' test.ping` median {res['ping_s']:.3f}s over {runs} runs")
            time.sleep(idle_wait)
            minion_trees = [p.tree() for p in box.minions.values()]
            res["minion_tree"] = {
                "rss_mb_median": statistics.median(tree_memory(t)["rss_mb"] for t in minion_trees),
                "pss_mb_median": statistics.median(tree_memory(t)["pss_mb"] for t in minion_trees),
                "procs_per_minion": statistics.median(len(t) for t in minion_trees),
                "largest_process_rss_mb_median": statistics.median(
                    max(tree_memory([p])["rss_mb"] for p in t) for t in minion_trees),
            }
            res["master_idle"] = tree_memory(box.master.tree())
        except (SaltUnavailable, TimeoutError, subprocess.TimeoutExpired, OSError) as exc:
            res["error"] = str(exc)
            say(f"salt: {n} minions: failed: {exc}")
        finally:
            box.close()
        out["sizes"][str(n)] = res
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.salt_compare", description="Time Salt's test.ping on loopback.")
    p.add_argument("-n", default="10", help="comma-separated minion counts (default 10)")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--workers", type=int, default=5)
    p.add_argument("--install-only", action="store_true")
    args = p.parse_args(argv)
    if args.install_only:
        try:
            print(ensure_salt())
        except SaltUnavailable as exc:
            sys.exit(f"Salt unavailable: {exc}")
        return
    print(json.dumps(measure([int(x) for x in args.n.split(",")], args.runs, args.workers), indent=2))


if __name__ == "__main__":
    main()
