"""The benchmarks' view of the shared sandbox harness (tests/support/sandbox.py): which rx
commands are timed (a clean install, the dev interpreter, or bench/patched.py), and a
sandbox with the benchmarks' settings.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rx.client.events import EventWatch
from tests.support.daemon import Daemon
from tests.support.sandbox import ENTRY_POINTS, Sandbox, script_command

DEADLINE = 60.0


def script(name: str) -> list[str]:
    """argv prefix for an installed entry point next to this interpreter (else `python -m`).

    With $RX_BENCH_PATCHES set, the entry point runs through bench/patched.py instead;
    with $RX_BENCH_VENV, the one installed in that venv.
    """
    if os.environ.get("RX_BENCH_PATCHES"):
        return [sys.executable, "-m", "rx.bench.patched", f"{ENTRY_POINTS[name]}:main"]
    installed = os.environ.get("RX_BENCH_VENV")
    if installed and (Path(installed) / "bin" / name).exists():
        return [str(Path(installed) / "bin" / name)]
    return script_command(name)


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


def timed(fn: Any, *args: Any, **kwargs: Any) -> float:
    """Seconds `fn(*args, **kwargs)` took."""
    t0 = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - t0


class BenchSandbox(Sandbox):
    """A sandbox with the benchmarks' settings: a temp root in /tmp, quiet logs, no job retention, the
    timed commands (`script`), and leftover descendants of a stopped daemon ended."""

    def __init__(self, workers: int | None = None, log_level: str = "warning") -> None:
        super().__init__(master_defaults={"log_level": log_level, "keep_jobs_hours": 0,
                                                **({"worker_processes": workers} if workers else {})},
                         minion_defaults={"log_level": log_level, "auth_retry_max_seconds": 2},
                         command=script, reap=True, deadline=DEADLINE)

    def start_master(self, wait: bool = True, **overrides: Any) -> Daemon:
        """Start rx-master and, once its sockets are up, prove the request path with a bus round trip."""
        master = super().start_master(wait, **overrides)
        if wait:
            EventWatch(self.cfg).close()
        return master

    def rx(self, *args: str, timeout: float = 120.0) -> tuple[float, subprocess.CompletedProcess]:
        """Run `rx ARGS` against the sandbox; returns (seconds, the completed process)."""
        t0 = time.perf_counter()
        cp = self.run_cli("rx", *args, timeout=timeout)
        return time.perf_counter() - t0, cp

    def close(self) -> None:
        """Stop everything; with $RX_BENCH_KEEP_LOGS, keep the daemons' logs there for a post-mortem."""
        logs = os.environ.get("RX_BENCH_KEEP_LOGS")
        self.stop_minions()
        if self.master is not None:
            self.master.stop()
        if logs:
            dest = Path(logs) / self.root.name
            dest.mkdir(parents=True, exist_ok=True)
            for log in self.root.glob("*.log"):
                shutil.copy2(log, dest / log.name)
        super().close()
