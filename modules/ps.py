"""Processes, CPU, memory and disk figures through psutil, in the shapes of Salt's `ps` module.

psutil is imported inside each function, so a minion that never runs `ps.*` never loads it.
"""

from __future__ import annotations

import datetime
import importlib.util
import os
import re
import time
from typing import Any

from rx.modules import CommandError

__all__ = ["top", "pgrep", "pkill", "kill_pid", "proc_info", "cpu_percent", "virtual_memory", "swap_memory",
           "disk_usage", "boot_time", "num_cpus", "status"]


def __virtual__() -> tuple[bool, str] | bool:
    # find_spec only looks for the package: the idle minion does not import psutil
    return True if importlib.util.find_spec("psutil") else (False, "the psutil package is not installed")


def _psutil() -> Any:
    import psutil
    return psutil


def _int(value: Any, name: str, minimum: int = 0) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise CommandError(f"{name} must be a whole number, got {value!r}") from None
    if isinstance(value, bool) or number < minimum:
        raise CommandError(f"{name} must be a whole number of at least {minimum}, got {value!r}")
    return number


def _interval(value: Any) -> float:
    """A sampling interval: seconds from 0 to 300."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise CommandError(f"interval must be a number of seconds, got {value!r}") from None
    if not 0 <= seconds <= 300:
        raise CommandError("interval must be between 0 and 300 seconds")
    return seconds


def _signal(value: Any) -> int:
    """A signal number from 15, "15", "TERM" or "SIGTERM"."""
    import signal as signals
    if isinstance(value, str) and not value.isdigit():
        name = value.upper() if value.upper().startswith("SIG") else "SIG" + value.upper()
        if not isinstance(getattr(signals, name, None), signals.Signals):
            raise CommandError(f"unknown signal {value!r}")
        return int(getattr(signals, name))
    number = _int(value, "signal")
    if number not in {int(s) for s in signals.Signals}:
        raise CommandError(f"unknown signal {value!r}")
    return number


def _cmdline(proc: Any) -> list:
    try:
        return proc.cmdline()
    except Exception:  # gone, a zombie, or not ours to read
        return []


def _name(proc: Any) -> str:
    try:
        return proc.name()
    except Exception:
        return ""


def _username(proc: Any) -> str:
    try:
        return proc.username()
    except Exception:
        return ""


def _matches(pattern: str, user: str | None, full: bool, regex: bool) -> list:
    """The processes whose name (or, with `full`, command line) contains `pattern` (or matches it, with `regex`)."""
    if not isinstance(pattern, str) or not pattern:
        raise CommandError("pattern must be a non-empty string")
    try:
        rx = re.compile(pattern) if regex else None
    except re.error as exc:
        raise CommandError(f"pattern is not a valid regular expression: {exc}") from None
    found = []
    for proc in _psutil().process_iter():
        text = " ".join(_cmdline(proc)) if full else _name(proc)
        if (rx.search(text) if rx else pattern in text) and (user is None or _username(proc) == user):
            found.append(proc)
    return found


def pgrep(pattern: str, user: str | None = None, full: bool = False, pattern_is_regex: bool = False) -> list | None:
    """Return the pids of the processes whose name contains `pattern` (the whole command line
    with `full`; a regular expression search with `pattern_is_regex`), owned by `user` if given;
    None if there are none (as Salt).

    CLI example: rx '*' ps.pgrep nginx user=www-data
    """
    return [p.pid for p in _matches(pattern, user, bool(full), bool(pattern_is_regex))] or None


def pkill(pattern: str, user: str | None = None, signal: int | str = 15, full: bool = False) -> dict | None:
    """Send `signal` (default 15, SIGTERM; a number or a name) to the processes `pgrep` would
    find; return {"killed": [pids]}, or None if none matched. The job's own process is spared.

    CLI example: rx '*' ps.pkill httpd signal=HUP
    """
    number = _signal(signal)
    psutil = _psutil()
    killed, denied = [], []
    for proc in _matches(pattern, user, bool(full), False):
        if proc.pid == os.getpid():
            continue
        try:
            proc.send_signal(number)
            killed.append(proc.pid)
        except psutil.NoSuchProcess:
            pass
        except psutil.AccessDenied:
            denied.append(proc.pid)
    if denied:
        raise CommandError(f"not permitted to signal {denied}; signalled {killed}")
    return {"killed": killed} if killed else None


def kill_pid(pid: int, signal: int | str = 15) -> bool:
    """Send `signal` (default 15, SIGTERM) to process `pid`; True if it was sent, False if there is no such process.

    CLI example: rx '*' ps.kill_pid 2048 signal=9
    """
    psutil = _psutil()
    number, target = _signal(signal), _int(pid, "pid", 1)
    try:
        psutil.Process(target).send_signal(number)
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        raise CommandError(f"not permitted to signal process {target}") from None
    return True


def proc_info(pid: int, attrs: list | str | None = None) -> dict:
    """Return psutil's facts about process `pid` ({name, cmdline, status, username, memory_info, ...});
    `attrs` (a list, or names separated by commas) limits it to those.

    CLI example: rx '*' ps.proc_info 1 attrs=name,status,cmdline
    """
    psutil = _psutil()
    names = [a.strip() for a in attrs.split(",")] if isinstance(attrs, str) else attrs
    try:
        return psutil.Process(_int(pid, "pid", 1)).as_dict(names)
    except psutil.NoSuchProcess:
        raise CommandError(f"no process with pid {pid}") from None
    except (ValueError, TypeError) as exc:
        raise CommandError(f"attrs: {exc}") from None


def top(num_processes: int = 5, interval: float = 3) -> list:
    """Return the `num_processes` processes that used the most CPU over `interval` seconds:
    [{cmd, user, status, pid, create_time, cpu: {user, system, ...}, mem: {rss, vms, ...}}].

    CLI example: rx '*' ps.top 10 interval=1
    """
    psutil = _psutil()
    count = _int(num_processes, "num_processes", 1)
    seconds = _interval(interval)
    start = {}
    for proc in psutil.process_iter():
        try:
            start[proc] = sum(proc.cpu_times()[:2])
        except psutil.Error:
            pass
    time.sleep(seconds)
    used = []
    for proc, before in start.items():
        try:
            used.append((sum(proc.cpu_times()[:2]) - before, proc))
        except psutil.Error:
            pass
    result = []
    for _, proc in sorted(used, key=lambda u: u[0], reverse=True):
        try:
            with proc.oneshot():
                result.append({"cmd": _cmdline(proc) or _name(proc), "user": _username(proc), "status": proc.status(),
                               "pid": proc.pid, "create_time": proc.create_time(),
                               "cpu": proc.cpu_times()._asdict(), "mem": proc.memory_info()._asdict()})
        except psutil.Error:
            continue  # ended since the first sample
        if len(result) >= count:
            break
    return result


def cpu_percent(interval: float = 0.1, per_cpu: bool = False) -> float | list:
    """Return the CPU use in percent over `interval` seconds (a list, one per CPU, with `per_cpu`).

    CLI example: rx '*' ps.cpu_percent interval=1 per_cpu=true
    """
    return _psutil().cpu_percent(interval=_interval(interval), percpu=bool(per_cpu))


def virtual_memory() -> dict:
    """Return the memory figures in bytes: {total, available, percent, used, free, active,
    inactive, buffers, cached, shared, slab}.

    CLI example: rx '*' ps.virtual_memory
    """
    return _psutil().virtual_memory()._asdict()


def swap_memory() -> dict:
    """Return the swap figures: {total, used, free (bytes), percent, sin, sout (bytes swapped in/out)}.

    CLI example: rx '*' ps.swap_memory
    """
    return _psutil().swap_memory()._asdict()


def disk_usage(path: str) -> dict:
    """Return the space of the filesystem holding `path`: {total, used, free (bytes), percent}.

    CLI example: rx '*' ps.disk_usage /var
    """
    if not isinstance(path, str) or not path.startswith("/"):
        raise CommandError(f"path must be absolute, got {path!r}")
    try:
        return _psutil().disk_usage(path)._asdict()
    except OSError as exc:
        raise CommandError(f"cannot stat {path}: {exc.strerror}") from None


def boot_time(time_format: str | None = None) -> int | str:
    """Return when the system booted, in seconds since the epoch, or formatted with the
    strftime `time_format` (local time), e.g. time_format='%Y-%m-%d %H:%M'.

    CLI example: rx '*' ps.boot_time time_format='%c'
    """
    booted = int(_psutil().boot_time())
    if not time_format:
        return booted
    try:
        return datetime.datetime.fromtimestamp(booted).strftime(str(time_format))
    except ValueError as exc:
        raise CommandError(f"invalid time_format: {exc}") from None


def num_cpus() -> int:
    """Return the number of logical CPUs.

    CLI example: rx '*' ps.num_cpus
    """
    return _psutil().cpu_count()


def status(status: str) -> list:
    """Return the processes in a state: [{pid, name}]. `status` is one of psutil's: running,
    sleeping, disk-sleep (or disk_sleep), stopped, tracing-stop, zombie, dead, wake-kill, waking, idle, parked.

    CLI example: rx '*' ps.status zombie
    """
    psutil = _psutil()
    known = sorted({v for k, v in vars(psutil).items() if k.startswith("STATUS_")})
    wanted = str(status).replace("_", "-")  # Salt's docs spell them disk_sleep, tracing_stop
    if wanted not in known:
        raise CommandError(f"status must be one of {', '.join(known)}; got {status!r}")
    return [{"pid": p.info["pid"], "name": p.info["name"]}
            for p in psutil.process_iter(["pid", "name", "status"]) if p.info["status"] == wanted]
