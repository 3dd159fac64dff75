"""Processes seen through /proc: free ports, polling, process trees, memory and CPU.

Nothing here knows about rx; the daemon wrapper, the sandbox and the benchmarks build on it.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any, Callable

DEADLINE = 45.0
"""Default seconds `wait_for` waits."""

_CLK = os.sysconf("SC_CLK_TCK")


class WaitTimeout(AssertionError, TimeoutError):
    """A condition did not come true in time: fails a test like an assert, and is a TimeoutError to scripts."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond: Callable[[], Any], timeout: float = DEADLINE, what: str = "condition",
             interval: float = 0.02) -> Any:
    """Poll `cond` until it returns something truthy and return that, or raise WaitTimeout after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise WaitTimeout(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


# ---------------------------------------------------------------- process trees

def proc_state(pid: int) -> str:
    """The one-letter state of `pid` ("R", "S", "Z", ...), or "" if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def is_running(pid: int) -> bool:
    """True while `pid` exists and is neither a zombie nor dead."""
    return proc_state(pid) not in ("", "Z", "X")


def comm(pid: int) -> str:
    """The name the kernel shows for `pid` (/proc/<pid>/comm; "" if it is gone)."""
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def cmdline(pid: int) -> str:
    """The command line of `pid`, arguments joined by spaces ("" if it is gone)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def children_of(pid: int, threads: bool = False) -> list[int]:
    """Child pids of `pid`: those its main thread forked, or with `threads` those any of its threads did."""
    try:
        tids = os.listdir(f"/proc/{pid}/task") if threads else [str(pid)]
    except OSError:
        return []
    out = []
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(p) for p in f.read().split()]
        except OSError:
            continue
    return out


def proc_tree(pid: int) -> list[int]:
    """`pid` and all its descendants (pid first)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        if os.path.exists(f"/proc/{p}"):
            out.append(p)
            todo += children_of(p, threads=True)
    return out


def processes_mentioning(text: str) -> list[int]:
    """Live (non-zombie) processes whose command line mentions `text`."""
    return [int(name) for name in os.listdir("/proc")
            if name.isdigit() and text in cmdline(int(name)) and is_running(int(name))]


# ---------------------------------------------------------------- memory and CPU

def _first_kb(path: str, field: str) -> int:
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_kb(pid: int) -> int:
    """Resident set size of `pid` in KiB (0 if it is gone)."""
    return _first_kb(f"/proc/{pid}/status", "VmRSS")


def peak_rss_kb(pid: int) -> int:
    """The largest resident set size `pid` has had so far, in KiB (VmHWM; 0 if it is gone)."""
    return _first_kb(f"/proc/{pid}/status", "VmHWM")


def pss_kb(pid: int) -> int:
    """Proportional set size of `pid` in KiB: shared pages split between the processes sharing them."""
    return _first_kb(f"/proc/{pid}/smaps_rollup", "Pss")


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
