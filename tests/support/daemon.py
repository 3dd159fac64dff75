"""A daemon process wrapper: started in the foreground (a child of ours, its output in a log
file) or detached with `-d` (its pid read from its pidfile, its output in its own log file).

Stopping is SIGTERM, then SIGKILL after a timeout (of the process group, for a detached
daemon: `-d` made it a session leader).  Daemons started in the foreground are also stopped
at exit; detached ones are meant to outlive this process.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable, Iterable

from .procs import DEADLINE, WaitTimeout, is_running, proc_tree, wait_for

STOP_TIMEOUT = 15.0
"""Seconds a daemon gets to exit after SIGTERM before it is killed."""

_LIVE: set["Daemon"] = set()


class StartError(RuntimeError):
    """A daemon did not start; the message says why (its exit status, its last output)."""


def read_pid(pidfile: str | Path) -> int | None:
    """The pid written in `pidfile`, or None if there is none."""
    try:
        text = Path(pidfile).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


class Daemon:
    """One daemon process.  The constructor starts it in the foreground; see `detach` and `attach`."""

    def __init__(self, name: str, argv: list[str], log: Path, *, env: dict | None = None, cwd: str | None = None,
                 reap: bool = False) -> None:
        """Start `argv` with stdout and stderr appended to `log`.  With `reap`, stopping it also ends
        whatever it leaves behind of its process tree."""
        self.name = name
        self.log = log
        self.reap = reap
        self.pidfile: Path | None = None
        self._fh = open(log, "ab")
        self.proc: subprocess.Popen | None = subprocess.Popen(
            argv, stdout=self._fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=cwd)
        self._pid = self.proc.pid
        self._descendants: list[int] = []
        _LIVE.add(self)

    @classmethod
    def attach(cls, name: str, pidfile: str | Path, log: Path) -> "Daemon | None":
        """The detached daemon whose pid is in `pidfile`, or None if the pidfile names none."""
        pid = read_pid(pidfile)
        if pid is None:
            return None
        self = cls.__new__(cls)
        self.name, self.log, self.reap, self.pidfile = name, log, False, Path(pidfile)
        self._fh, self.proc, self._pid, self._descendants = None, None, pid, []
        return self

    @classmethod
    def detach(cls, name: str, argv: list[str], pidfile: str | Path, log: Path, *, env: dict | None = None,
               timeout: float = DEADLINE) -> "Daemon":
        """Run `argv -d` (the daemon forks into the background and the command returns) and wait for
        the daemon's pidfile.  Raises StartError with the command's output if it fails."""
        pid = read_pid(pidfile)
        if pid is not None and not is_running(pid):
            Path(pidfile).unlink()  # stale: the daemon would overwrite it, but we must not read it first
        try:
            cp = subprocess.run([*argv, "-d"], capture_output=True, text=True, env=env, timeout=timeout,
                                stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise StartError(f"{name}: `{' '.join(argv)} -d` did not return within {timeout:g}s") from None
        if cp.returncode != 0:
            out = (cp.stderr or cp.stdout).strip()
            raise StartError(f"{name} did not start (exit {cp.returncode}): {out}")
        try:
            wait_for(lambda: read_pid(pidfile), timeout, what=f"{name} to write {pidfile}")
        except WaitTimeout as exc:
            raise StartError(f"{name}: {exc}") from None
        daemon = cls.attach(name, pidfile, log)
        assert daemon is not None
        return daemon

    @property
    def pid(self) -> int:
        return self._pid

    @property
    def detached(self) -> bool:
        return self.proc is None

    def alive(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is None
        return is_running(self._pid)

    def tree(self) -> list[int]:
        """Its pid and its descendants' (empty once it has exited)."""
        return proc_tree(self._pid) if self.alive() else []

    def output(self) -> str:
        """Everything in its log so far."""
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = 12) -> str:
        """The last lines of its log."""
        return "\n".join(self.output().splitlines()[-lines:])

    def send_signal(self, sig: int = signal.SIGTERM) -> bool:
        """Send `sig` if it is still running; returns whether it was."""
        if not self.alive():
            return False
        if self.reap and not self._descendants:
            self._descendants = self.tree()[1:]
        try:
            os.kill(self._pid, sig)
        except ProcessLookupError:
            return False
        return True

    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for it to exit; returns whether it did."""
        if self.proc is not None:
            try:
                self.proc.wait(max(0.0, timeout))
                return True
            except subprocess.TimeoutExpired:
                return False
        try:
            wait_for(lambda: not self.alive(), max(0.0, timeout), what=f"{self.name} to exit", interval=0.05)
        except WaitTimeout:
            return False
        return True

    def kill(self) -> None:
        """SIGKILL it (a detached daemon with its process group, unless that is ours) and wait for it."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            return
        try:
            pgid = os.getpgid(self._pid)
            if pgid != os.getpgrp():
                os.killpg(pgid, signal.SIGKILL)
            os.kill(self._pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        self.wait(5.0)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> int | None:
        """Send `sig`, wait up to `timeout`, then kill; returns the exit status (None for a detached daemon)."""
        if self.send_signal(sig) and not self.wait(timeout):
            self.kill()
        return self._finish()

    def _finish(self) -> int | None:
        if self._descendants:
            _reap(self._descendants)
            self._descendants = []
        if self._fh is not None and not self._fh.closed:
            self._fh.close()
        _LIVE.discard(self)
        return self.proc.wait() if self.proc is not None else None


def _reap(pids: list[int], timeout: float = 5.0) -> None:
    """Give what a stopped daemon left behind `timeout` seconds to exit, then SIGKILL it (by pid: only those)."""
    try:
        wait_for(lambda: not any(is_running(p) for p in pids), timeout, what="descendants to exit", interval=0.05)
    except WaitTimeout:
        for p in pids:
            if is_running(p):
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass


def stop_all(daemons: Iterable[Daemon], timeout: float = STOP_TIMEOUT,
             report: Callable[[str], None] | None = None) -> None:
    """SIGTERM every daemon at once, give them `timeout` seconds together, then kill the ones left."""
    daemons = list(daemons)
    for d in daemons:
        if d.send_signal(signal.SIGTERM) and report:
            report(f"{d.name}: sent SIGTERM to pid {d.pid}")
    deadline = time.monotonic() + timeout
    for d in daemons:
        if not d.wait(deadline - time.monotonic()):
            if report:
                report(f"{d.name}: pid {d.pid} did not exit within {timeout:g}s; sending SIGKILL")
            d.kill()
        d._finish()


@atexit.register
def _stop_live() -> None:
    stop_all(list(_LIVE), timeout=5.0)
