"""Private Linux namespaces for testing back ends this machine does not run (systemd as init, OpenRC, dnf):
a process holds a mount namespace whose /usr, /etc, /var may be overlays (writes land in a temp dir, the
host's files stay as they are) and whose /run is a tmpfs; module functions are then called inside it with
nsenter, in a fresh interpreter, and their return (or CommandError) comes back as JSON."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

CALL = """import importlib, json, sys
from rx.modules import CommandError
module, fun, args, kwargs = json.loads(sys.argv[1])
try:
    print(json.dumps({"ok": getattr(importlib.import_module("rx.modules." + module), fun)(*args, **kwargs)}))
except CommandError as exc:
    print(json.dumps({"error": str(exc)}))
"""


def call_in(pid: int, module: str, fun: str, *args, pid_ns: bool = False, timeout: float = 300, **kwargs) -> dict:
    """Call `rx.modules.<module>.<fun>(*args, **kwargs)` inside the namespaces of process `pid`: {"ok": value}
    or {"error": the CommandError's message}."""
    argv = ["nsenter", "-t", str(pid), "-m", *(["-p"] if pid_ns else []), sys.executable, "-c", CALL,
            json.dumps([module, fun, list(args), kwargs])]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def require_namespace_tools() -> None:
    if os.geteuid() != 0 or not all(shutil.which(t) for t in ("unshare", "nsenter")):
        pytest.skip("needs root, unshare and nsenter")


class OverlayNamespace:
    """A mount namespace with overlays over `dirs` (upper layers under `tmp`) and a tmpfs /run, in which the
    shell commands `setup` run once; `pid` is the process holding it."""

    def __init__(self, tmp: Path, dirs: tuple[str, ...], setup: str, ready_within: float = 600) -> None:
        self.tmp = tmp
        lines = ["set -e"]
        for d in dirs:
            (tmp / "up" / d).mkdir(parents=True, exist_ok=True)
            (tmp / "work" / d).mkdir(parents=True)
            lines.append(f"mount -t overlay overlay -o lowerdir=/{d},upperdir={tmp}/up/{d},workdir={tmp}/work/{d} /{d}")
        lines += ["mount -t tmpfs tmpfs /run", "mkdir -p /run/lock", f"( {setup} ) > {tmp}/setup.log 2>&1",
                  f"echo ready > {tmp}/ready", "exec sleep 3600"]
        (tmp / "ns.sh").write_text("\n".join(lines) + "\n")
        self.proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", str(tmp / "ns.sh")],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     start_new_session=True)
        self.pid = self.proc.pid
        deadline = time.monotonic() + ready_within
        while not (tmp / "ready").exists() and self.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        self.ready = (tmp / "ready").exists()

    def why_not(self) -> str:
        """What went wrong when the namespace did not become ready."""
        self.close()
        log = self.tmp / "setup.log"
        return (log.read_text() if log.exists() else self.proc.stderr.read().decode(errors="replace"))[-400:]

    def run(self, *argv: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(["nsenter", "-t", str(self.pid), "-m", *argv], capture_output=True, text=True,
                              timeout=timeout)

    def call(self, module: str, fun: str, *args, **kwargs) -> dict:
        return call_in(self.pid, module, fun, *args, **kwargs)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        if self.proc.stderr:
            self.proc.stderr.close()
