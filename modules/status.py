"""System status read from /proc: uptime, load, memory, CPU, disks, network counters, processes.

Return shapes follow Salt's `status` module, so scripts written against it port unchanged; where
rx differs, the function's doc says how.
"""

from __future__ import annotations

import datetime
import fnmatch
import os
import re
import subprocess
import time
from typing import Any

from rx.modules import CommandError

__all__ = ["uptime", "loadavg", "meminfo", "cpuinfo", "cpustats", "diskusage", "diskstats",
           "netdev", "netstats", "vmstats", "procs", "pid", "w", "version", "all_status"]

_DISKSTATS_FIELDS = ("reads_issued", "reads_merged", "sectors_read", "ms_spent_reading",
                     "writes_completed", "writes_merged", "sectors_written", "ms_spent_writing",
                     "io_in_progress", "ms_spent_in_io", "weighted_ms_spent_in_io")
_NETDEV_FIELDS = ("rx_bytes", "rx_packets", "rx_errs", "rx_drop", "rx_fifo", "rx_frame", "rx_compressed",
                  "rx_multicast", "tx_bytes", "tx_packets", "tx_errs", "tx_drop", "tx_fifo", "tx_colls",
                  "tx_carrier", "tx_compressed")
_CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from None


def _number(text: str) -> int | float | str:
    """An int or float if `text` is one, else the text unchanged."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def uptime() -> dict:
    """Return how long the system has been up: {seconds, since_iso, since_t, days, time, users}.

    `time` is the part under a day as H:MM; `users` counts the login sessions in utmp.
    CLI example: rx '*' status.uptime
    """
    now = time.time()
    seconds = int(float(_read("/proc/uptime").split()[0]))
    since = now - seconds
    rest = seconds % 86400
    return {"seconds": seconds,
            "since_iso": datetime.datetime.fromtimestamp(since, datetime.timezone.utc).replace(tzinfo=None).isoformat(),
            "since_t": int(since), "days": seconds // 86400, "time": f"{rest // 3600}:{rest % 3600 // 60:02d}",
            "users": _count_users()}


def _count_users() -> int:
    import psutil  # only when asked: the idle minion does not load it
    return len(psutil.users())


def loadavg() -> dict:
    """Return the load averages: {"1-min", "5-min", "15-min"}.

    CLI example: rx '*' status.loadavg
    """
    one, five, fifteen = os.getloadavg()
    return {"1-min": one, "5-min": five, "15-min": fifteen}


def _parse_meminfo(text: str) -> dict:
    """/proc/meminfo as {key: {"value": "123", "unit": "kB"}} ("unit" only where the line has one)."""
    ret = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(":")
        if not sep:
            continue
        parts = rest.split()
        if parts:
            ret[key.strip()] = {"value": parts[0], **({"unit": parts[1]} if len(parts) > 1 else {})}
    return ret


def meminfo() -> dict:
    """Return /proc/meminfo as {key: {"value": "<number as text>", "unit": "kB"}} (Salt's shape).

    CLI example: rx '*' status.meminfo
    """
    return _parse_meminfo(_read("/proc/meminfo"))


def _parse_cpuinfo(text: str) -> dict:
    """/proc/cpuinfo as one flat dict; a key of several CPUs keeps the last CPU's value, `flags` a list."""
    ret: dict[str, Any] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            ret[key.strip()] = value.strip()
    if "flags" in ret:
        ret["flags"] = ret["flags"].split()
    return ret


def cpuinfo() -> dict:
    """Return /proc/cpuinfo as {field: value} (the last CPU listed, as Salt); `flags` is a list.

    CLI example: rx '*' status.cpuinfo
    """
    return _parse_cpuinfo(_read("/proc/cpuinfo"))


def _parse_cpustats(text: str) -> dict:
    """/proc/stat: `cpu` and each `cpuN` as {user, nice, system, idle, iowait, irq, softirq, steal}."""
    ret: dict[str, Any] = {}
    for line in text.splitlines():
        comps = line.split()
        if not comps:
            continue
        name, values = comps[0], [_number(v) for v in comps[1:]]
        if re.fullmatch(r"cpu\d*", name):
            ret[name] = dict(zip(_CPU_FIELDS, values))
        elif name == "intr":
            ret[name] = {"total": values[0], "irqs": values[1:]}
        elif name == "softirq":
            ret[name] = {"total": values[0], "softirqs": values[1:]}
        elif values:
            ret[name] = values[0]
    return ret


def cpustats() -> dict:
    """Return /proc/stat: cpu, cpuN ({user, nice, system, idle, iowait, irq, softirq, steal} in
    ticks), intr and softirq ({total, irqs/softirqs}), ctxt, btime, processes, procs_running, procs_blocked.

    Differs from Salt: each `cpuN` has all the fields of `cpu` (Salt gives only its user ticks).
    CLI example: rx '*' status.cpustats
    """
    return _parse_cpustats(_read("/proc/stat"))


def _unescape_mount(path: str) -> str:
    """/proc/mounts writes space, tab, newline and backslash in octal (\\040 ...)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), path)


def diskusage(*args: str) -> dict:
    """Return {mount point: {"available": bytes, "total": bytes}} for the mounted filesystems.

    Arguments select: an absolute path selects that path, anything else is a filesystem type glob
    (`ext?`); no arguments select every mounted filesystem.
    CLI example: rx '*' status.diskusage / ext?
    """
    paths = {a for a in args if isinstance(a, str) and a.startswith("/")}
    fstypes = [str(a) for a in args if not (isinstance(a, str) and a.startswith("/"))] or ([] if args else ["*"])
    if fstypes:
        for line in _read("/proc/mounts").splitlines():
            comps = line.split()
            if len(comps) >= 3 and any(fnmatch.fnmatchcase(comps[2], t) for t in fstypes):
                paths.add(_unescape_mount(comps[1]))
    ret = {}
    for path in sorted(paths):
        try:
            st = os.statvfs(path)
        except OSError as exc:
            if path in args:
                raise CommandError(f"cannot stat {path}: {exc.strerror}") from None
            continue  # a mount point that went away or cannot be read
        ret[path] = {"available": st.f_bavail * st.f_frsize, "total": st.f_blocks * st.f_frsize}
    return ret


def _parse_diskstats(text: str) -> dict:
    """/proc/diskstats as {device: {major, minor, device, reads_issued, ...}} (the first 14 columns)."""
    ret = {}
    for line in text.splitlines():
        comps = line.split()
        if len(comps) < 14:
            continue
        ret[comps[2]] = {"major": int(comps[0]), "minor": int(comps[1]), "device": comps[2],
                         **dict(zip(_DISKSTATS_FIELDS, (int(v) for v in comps[3:14])))}
    return ret


def diskstats() -> dict:
    """Return the block devices' I/O counters from /proc/diskstats: {device: {major, minor,
    device, reads_issued, reads_merged, sectors_read, ms_spent_reading, writes_completed,
    writes_merged, sectors_written, ms_spent_writing, io_in_progress, ms_spent_in_io, weighted_ms_spent_in_io}}.

    CLI example: rx '*' status.diskstats
    """
    return _parse_diskstats(_read("/proc/diskstats"))


def _parse_netdev(text: str) -> dict:
    """/proc/net/dev as {iface: {iface, rx_bytes, ..., tx_compressed}}."""
    ret = {}
    for line in text.splitlines():
        name, sep, rest = line.partition(":")
        values = rest.split()
        if not sep or "|" in line or len(values) < len(_NETDEV_FIELDS):
            continue
        ret[name.strip()] = {"iface": name.strip(), **dict(zip(_NETDEV_FIELDS, (int(v) for v in values)))}
    return ret


def netdev() -> dict:
    """Return each network interface's counters from /proc/net/dev: {iface: {iface, rx_bytes,
    rx_packets, rx_errs, rx_drop, ..., tx_bytes, tx_packets, ..., tx_compressed}}.

    CLI example: rx '*' status.netdev
    """
    return _parse_netdev(_read("/proc/net/dev"))


def _parse_netstats(text: str) -> dict:
    """/proc/net/netstat (header and value lines in pairs) as {"TcpExt": {counter: n}, ...}."""
    ret: dict[str, dict] = {}
    lines = text.splitlines()
    for head, vals in zip(lines[::2], lines[1::2]):
        names, values = head.split(), vals.split()
        if names and values and names[0] == values[0]:
            ret[names[0].rstrip(":")] = {n: _number(v) for n, v in zip(names[1:], values[1:])}
    return ret


def netstats() -> dict:
    """Return the kernel's extended network counters from /proc/net/netstat: {"TcpExt": {...}, "IpExt": {...}}.

    CLI example: rx '*' status.netstats
    """
    return _parse_netstats(_read("/proc/net/netstat"))


def vmstats() -> dict:
    """Return the virtual memory counters from /proc/vmstat: {name: number}.

    CLI example: rx '*' status.vmstats
    """
    return {k: _number(v) for k, _, v in (line.partition(" ") for line in _read("/proc/vmstat").splitlines()) if v}


def _process_table() -> dict:
    import psutil  # only when asked
    ret = {}
    for proc in psutil.process_iter(["pid", "username", "cmdline", "name"]):
        info = proc.info
        cmd = " ".join(info["cmdline"] or []) or f"[{info['name']}]"
        ret[str(info["pid"])] = {"user": info["username"] or "", "cmd": cmd}
    return ret


def procs() -> dict:
    """Return the running processes as {pid: {"user": name, "cmd": command line}} (kernel threads as `[name]`).

    CLI example: rx '*' status.procs
    """
    return _process_table()


def pid(sig: str) -> str:
    """Return the pids (one a line, as text; "" if none) of the processes whose command line
    matches the regular expression `sig`; the job's own process is left out.

    CLI example: rx '*' status.pid sshd
    """
    try:
        pattern = re.compile(str(sig))
    except re.error as exc:
        raise CommandError(f"sig is not a valid regular expression: {exc}") from None
    me = str(os.getpid())
    return "\n".join(p for p, info in _process_table().items() if p != me and pattern.search(info["cmd"]))


def _parse_w(text: str) -> list:
    """`w` output (its header names the columns) as [{user, tty, from?, login, idle, jcpu, pcpu, what}]."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.split()[:2] == ["USER", "TTY"]:
            keys = [k.rstrip("@").lower() for k in line.split()]
            break
    else:
        raise CommandError(f"unexpected output from w: {text[:200]!r}")
    users = []
    for line in lines[i + 1:]:
        comps = line.split(None, len(keys) - 1)
        if len(comps) >= len(keys) - 1:
            users.append(dict(zip(keys, comps + [""] * (len(keys) - len(comps)))))
    return users


def w() -> list:
    """Return the logged-in users as `w` shows them: [{user, tty, from, login, idle, jcpu, pcpu, what}].

    Differs from Salt: `from` is included where `w` shows it.
    CLI example: rx '*' status.w
    """
    try:
        out = subprocess.run(["w"], capture_output=True, text=True, errors="replace", timeout=30)
    except FileNotFoundError:
        raise CommandError("status.w needs the w command (procps)") from None
    except subprocess.TimeoutExpired:
        raise CommandError("w did not finish within 30 s") from None
    if out.returncode != 0:
        raise CommandError(f"w failed: {out.stderr.strip()}")
    return _parse_w(out.stdout)


def version() -> str:
    """Return the kernel's version string (/proc/version).

    CLI example: rx '*' status.version
    """
    return _read("/proc/version").strip()


def all_status() -> dict:
    """Return everything above in one dict: cpuinfo, cpustats, diskstats, diskusage, loadavg,
    meminfo, netdev, netstats, uptime, vmstats, w (the reason, as text, where `w` cannot run).

    CLI example: rx '*' status.all_status
    """
    try:
        users: list | str = w()
    except CommandError as exc:  # no `w` on this host: the rest is still worth having
        users = str(exc)
    return {"cpuinfo": cpuinfo(), "cpustats": cpustats(), "diskstats": diskstats(), "diskusage": diskusage(),
            "loadavg": loadavg(), "meminfo": meminfo(), "netdev": netdev(), "netstats": netstats(),
            "uptime": uptime(), "vmstats": vmstats(), "w": users}
