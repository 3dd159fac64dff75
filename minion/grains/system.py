"""System grains: kernel (uname), the init system, systemd, the package architecture, the
minion process (user, group, pid, Python, shell, PATH), locale and time zone, kernel command
line and firmware, and rx's own version."""

from __future__ import annotations

import codecs
import grp
import locale
import os
import platform
import pwd
import shlex
import subprocess
import sys
import time
from typing import Any

import rx

# cpuarch (uname -m) -> Debian's architecture name, when dpkg cannot be asked
DEBIAN_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "i686": "i386", "i586": "i386", "armv7l": "armhf",
               "armv6l": "armel", "ppc64le": "ppc64el", "s390x": "s390x", "riscv64": "riscv64",
               "mips64": "mips64el", "loongarch64": "loong64"}
INIT_NAMES = {"systemd": "systemd", "upstart": "upstart", "runit": "runit", "runit-init": "runit",
              "openrc-init": "openrc", "s6-svscan": "s6", "supervisord": "supervisord"}
SUBPROCESS_TIMEOUT = 5


def which(name: str) -> str | None:
    """The path of an executable on PATH (not through the standard library's own `which`, whose module
    pulls in the compression modules: the minion's idle memory stays smaller)."""
    for d in os.environ.get("PATH", os.defpath).split(os.pathsep):
        path = os.path.join(d or ".", name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def _run(argv: list[str]) -> str:
    """stdout of a short command, '' if it cannot run or fails."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT, errors="replace")
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout if done.returncode == 0 else ""


def _read(path: str) -> str:
    try:
        with open(path, "rb") as f:
            return f.read(1 << 16).decode("utf-8", errors="replace")
    except OSError:
        return ""


def kernel_grains() -> dict[str, Any]:
    """kernel, nodename, kernelrelease, kernelversion, cpuarch (uname), kernelparams (/proc/cmdline
    as [name, value or None] pairs), efi and efi-secure-boot."""
    u = platform.uname()
    params = []
    try:
        words = shlex.split(_read("/proc/cmdline"))
    except ValueError:
        words = _read("/proc/cmdline").split()
    for word in words:
        name, sep, value = word.partition("=")
        params.append([name, value if sep else None])
    secure = _read_bytes("/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c")
    return {"kernel": u.system, "nodename": u.node, "kernelrelease": u.release, "kernelversion": u.version,
            "cpuarch": u.machine, "kernelparams": params, "efi": os.path.isdir("/sys/firmware/efi"),
            "efi-secure-boot": bool(secure) and secure[-1:] == b"\x01"}


def _read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(64)
    except OSError:
        return b""


def osarch(os_family: str, cpuarch: str) -> str:
    """The package architecture: dpkg's name on Debian-family systems (amd64, arm64), else cpuarch."""
    if os_family == "Debian":
        return _run(["dpkg", "--print-architecture"]).strip() or DEBIAN_ARCH.get(cpuarch, cpuarch)
    return cpuarch


def init_system(cmdline: str, booted_by_systemd: bool) -> str:
    """The init grain from PID 1's command line: systemd, upstart, sysvinit, openrc, runit, s6,
    supervisord, busybox, or unknown (a container's own entry point)."""
    if booted_by_systemd:
        return "systemd"
    argv0 = cmdline.split("\0", 1)[0]
    if not argv0:
        return "unknown"
    real = os.path.realpath(argv0)
    name = os.path.basename(real)
    if name in INIT_NAMES or "systemd" in real:
        return INIT_NAMES.get(name, "systemd")
    if name == "busybox":
        return "openrc" if os.path.exists("/sbin/openrc") else "busybox"
    if name == "init":
        return "openrc" if os.path.exists("/sbin/openrc") else "sysvinit"
    return "unknown"


def systemd_grain() -> dict[str, str] | None:
    """{"version", "features"} from `systemctl --version`, when systemctl and localectl are installed."""
    if not (which("systemctl") and which("localectl")):
        return None
    lines = _run(["systemctl", "--version"]).splitlines()
    if not lines or len(lines[0].split()) < 2:
        return None
    return {"version": lines[0].split()[1], "features": lines[1].strip() if len(lines) > 1 else ""}


def _zone_name() -> str:
    """The IANA time zone: $TZ, the /etc/localtime link, or /etc/timezone; else the abbreviation."""
    tz = os.environ.get("TZ", "").lstrip(":")
    if tz and "/" in tz and not tz.startswith("/"):
        return tz
    link = os.path.realpath("/etc/localtime")
    if "zoneinfo/" in link:
        return link.split("zoneinfo/", 1)[1]
    return _read("/etc/timezone").strip() or time.strftime("%Z")


def locale_grains() -> dict[str, Any]:
    """locale_info (defaultlanguage, defaultencoding, detectedencoding, timezone) as Salt, and
    timezone, the IANA zone name (rx's addition: what `timezone.get_zone` says)."""
    lang = next((os.environ[v] for v in ("LC_ALL", "LC_CTYPE", "LANG", "LANGUAGE") if os.environ.get(v)), "")
    language, _, encoding = locale.normalize(lang.split(":", 1)[0]).partition(".") if lang else ("", "", "")
    encoding = encoding.partition("@")[0]
    try:
        detected = codecs.lookup(locale.getpreferredencoding(False)).name
    except LookupError:
        detected = sys.getfilesystemencoding()
    return {"locale_info": {"defaultlanguage": language if language not in ("C", "POSIX") else "",
                            "defaultencoding": encoding, "detectedencoding": detected,
                            "timezone": time.strftime("%Z")},
            "timezone": _zone_name()}


def process_grains() -> dict[str, Any]:
    """The minion process: uid, gid, username, groupname, pid, cwd, shell, path, systempath and
    Python (pythonversion as Salt's [major, minor, micro, releaselevel, serial])."""
    uid, gid = os.getuid(), os.getgid()
    try:
        username = pwd.getpwuid(uid).pw_name
    except KeyError:
        username = str(uid)
    try:
        groupname = grp.getgrgid(gid).gr_name
    except KeyError:
        groupname = str(gid)
    path = os.environ.get("PATH", os.defpath)
    return {"uid": uid, "gid": gid, "username": username, "groupname": groupname, "pid": os.getpid(),
            "cwd": os.getcwd() if os.path.isdir(".") else "/", "shell": os.environ.get("SHELL", "/bin/sh"),
            "path": path, "systempath": path.split(os.pathsep),
            "pythonversion": list(sys.version_info), "pythonexecutable": sys.executable,
            "pythonpath": list(sys.path)}


def rx_grains() -> dict[str, Any]:
    """rxversion ("0.1.0"), rxversioninfo ([0, 1, 0], like Salt's saltversioninfo) and rxpath."""
    info = [int(p) if p.isdigit() else p for p in rx.__version__.split(".")]
    return {"rxversion": rx.__version__, "rxversioninfo": info, "rxpath": os.path.dirname(rx.__file__)}


def system_grains() -> dict[str, Any]:
    grains = kernel_grains()
    grains["init"] = init_system(_read("/proc/1/cmdline"), os.path.isdir("/run/systemd/system"))
    systemd = systemd_grain()
    if systemd is not None:
        grains["systemd"] = systemd
    grains.update(locale_grains())
    grains.update(process_grains())
    grains.update(rx_grains())
    return grains
