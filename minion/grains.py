"""Core grains: facts about the minion host, computed once at start."""

from __future__ import annotations

import os
import platform
import socket
import sys
from typing import Any, Mapping

import rx


def _os_release() -> dict[str, str]:
    out: dict[str, str] = {}
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            with open(path) as f:
                for line in f:
                    key, sep, value = line.strip().partition("=")
                    if sep:
                        out[key] = value.strip().strip('"')
            return out
        except OSError:
            continue
    return out


def _addresses() -> tuple[list[str], list[str]]:
    v4: set[str] = {"127.0.0.1"}
    v6: set[str] = set()
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None):
            addr = info[4][0]
            (v6 if info[0] == socket.AF_INET6 else v4).add(addr.split("%")[0])
    except OSError:
        pass
    try:
        with open("/proc/net/if_inet6") as f:
            for line in f:
                h = line.split()[0]
                v6.add(socket.inet_ntop(socket.AF_INET6, bytes.fromhex(h)))
    except OSError:
        pass
    try:
        with open("/proc/net/fib_trie") as f:
            lines = f.read().splitlines()
        for i, line in enumerate(lines):
            if "/32 host LOCAL" in line and i > 0:
                v4.add(lines[i - 1].split()[-1])
    except OSError:
        pass
    return sorted(v4), sorted(v6)


def _mem_total_mb() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) // 1024
    except (OSError, ValueError):
        pass
    return 0


def core_grains(minion_id: str) -> dict[str, Any]:
    rel = _os_release()
    uname = platform.uname()
    ipv4, ipv6 = _addresses()
    return {
        "id": minion_id,
        "host": socket.gethostname().split(".")[0],
        "fqdn": socket.getfqdn(),
        "kernel": uname.system,
        "kernelrelease": uname.release,
        "os": rel.get("NAME", uname.system).split()[0] if rel else uname.system,
        "os_family": (rel.get("ID_LIKE") or rel.get("ID") or uname.system).split()[0].capitalize(),
        "osrelease": rel.get("VERSION_ID", uname.release),
        "oscodename": rel.get("VERSION_CODENAME", ""),
        "cpuarch": uname.machine,
        "num_cpus": os.cpu_count() or 1,
        "mem_total": _mem_total_mb(),
        "ipv4": ipv4,
        "ipv6": ipv6,
        "pythonversion": list(sys.version_info[:3]),
        "rxversion": rx.__version__,
    }


def load_grains(minion_id: str, static: Mapping[str, Any]) -> dict[str, Any]:
    """Core grains overlaid with the static `grains:` from the minion config."""
    return {**core_grains(minion_id), **dict(static)}
