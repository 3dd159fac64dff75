"""Services run by init scripts (the `service` module where neither systemd nor OpenRC is the init system,
e.g. Debian with sysvinit, or a container without an init): each action runs `<dir>/<name> <action>` with
the plain environment `service(8)` gives, in a session of its own so the daemon outlives the job.

The script directory is the minion's `service_init_dir` setting (default /etc/init.d).  Boot-time links
live in the rc?.d directories beside it: with the default directory and Debian's `update-rc.d` present,
enable/disable use update-rc.d; otherwise rx manages the S/K links itself from the script's LSB header.
Actions that fail raise an error carrying the script's output (retcode 1) where Salt returns False.
"""

from __future__ import annotations

import glob
import os
import re
from typing import Any

from rx.modules import CommandError, ExecContext
from rx.modules import _svcutil as su
from rx.modules._syscmd import check, run

__all__ = ["status", "start", "stop", "restart", "reload", "enable", "disable", "enabled", "disabled",
           "available", "missing", "get_all", "get_running", "get_enabled", "get_disabled", "show"]

BOOT_LEVELS = ("S", "2", "3", "4", "5")
LINK_RE = re.compile(r"^([SK])(\d\d)(.+)$")


def __virtual__() -> Any:
    if os.path.isdir("/run/systemd/system"):
        return False, "systemd is the init system here (the systemd back end serves it)"
    if os.path.isdir("/run/openrc"):
        return False, "OpenRC is the init system here (the openrc back end serves it)"
    return True


def _act(ctx: ExecContext, name: str, action: str, timeout: float = su.SERVICE_TIMEOUT) -> Any:
    path = su.script(ctx, name)
    return run([path, action], timeout, su.PLAIN_ENV, clean_env=True, spawns=True)


def _running(ctx: ExecContext, name: str) -> bool:
    return _act(ctx, name, "status", 60).returncode == 0


def status(ctx: ExecContext, name: str, sig: str | None = None) -> Any:
    """Return True if service `name` runs (its script's `status` exits 0).  With a glob (`'post*'`) return
    {service: bool} for each matching script; with `sig`, whether a process matching that pattern runs.

    CLI example: rx '*' service.status ssh
    """
    return su.status_of(name, sig, lambda: su.scripts(su.init_dir(ctx)), lambda n: _running(ctx, n))


def _do(ctx: ExecContext, name: str, action: str) -> bool:
    return su.action_result(f"{su.script(ctx, name)} {action}", _act(ctx, name, action))


def start(ctx: ExecContext, name: str) -> bool:
    """Start service `name`; return True (an error with the script's output if it fails).

    CLI example: rx '*' service.start ssh
    """
    return _do(ctx, name, "start")


def stop(ctx: ExecContext, name: str) -> bool:
    """Stop service `name`; return True.

    CLI example: rx '*' service.stop ssh
    """
    return _do(ctx, name, "stop")


def restart(ctx: ExecContext, name: str) -> bool:
    """Restart service `name`; return True.

    CLI example: rx '*' service.restart ssh
    """
    return _do(ctx, name, "restart")


def reload(ctx: ExecContext, name: str) -> bool:
    """Have service `name` reload its configuration (its script's `reload`); return True.

    CLI example: rx '*' service.reload ssh
    """
    return _do(ctx, name, "reload")


def _rc_dirs(ctx: ExecContext) -> dict[str, str]:
    base = os.path.dirname(su.init_dir(ctx).rstrip("/"))
    return {lvl: os.path.join(base, f"rc{lvl}.d") for lvl in ("S", "0", "1", "2", "3", "4", "5", "6")}


def _links(ctx: ExecContext, name: str) -> dict[str, list[str]]:
    """{runlevel: [link file names]} of service `name`'s S/K links."""
    out: dict[str, list[str]] = {}
    for lvl, d in _rc_dirs(ctx).items():
        found = [os.path.basename(p) for p in glob.glob(os.path.join(glob.escape(d), "[SK][0-9][0-9]*"))
                 if (m := LINK_RE.match(os.path.basename(p))) and m.group(3) == name]
        if found:
            out[lvl] = sorted(found)
    return out


def _use_update_rc_d(ctx: ExecContext) -> bool:
    import shutil
    return os.path.realpath(su.init_dir(ctx)) == su.DEFAULT_INIT_DIR and shutil.which("update-rc.d") is not None


def enable(ctx: ExecContext, name: str) -> bool:
    """Start service `name` at boot (update-rc.d defaults + enable, or S links in the LSB header's
    Default-Start runlevels); return True.

    CLI example: rx '*' service.enable ssh
    """
    path = su.script(ctx, name)
    if _use_update_rc_d(ctx):
        if not _links(ctx, name):
            check(["update-rc.d", name, "defaults"], 120)
        check(["update-rc.d", name, "enable"], 120)
        return True
    header = su.lsb_header(path)
    dirs = _rc_dirs(ctx)
    starts = header.get("Default-Start", "2 3 4 5").split()
    stops = header.get("Default-Stop", "0 1 6").split()
    links = _links(ctx, name)
    for lvl in starts + stops:
        if lvl not in dirs:
            continue
        os.makedirs(dirs[lvl], exist_ok=True)
        if lvl in stops and links.get(lvl):
            continue
        for old in links.get(lvl, []):
            os.unlink(os.path.join(dirs[lvl], old))
        link = os.path.join(dirs[lvl], f"{'S' if lvl in starts else 'K'}01{name}")
        os.symlink(os.path.relpath(path, dirs[lvl]), link)
    return True


def disable(ctx: ExecContext, name: str) -> bool:
    """Do not start service `name` at boot (its start links become stop links); return True.

    CLI example: rx '*' service.disable ssh
    """
    su.script(ctx, name)
    links = _links(ctx, name)
    if _use_update_rc_d(ctx):
        if links:
            check(["update-rc.d", name, "disable"], 120)
        return True
    dirs = _rc_dirs(ctx)
    for lvl, names in links.items():
        for link in names:
            m = LINK_RE.match(link)
            if m and m.group(1) == "S":
                os.rename(os.path.join(dirs[lvl], link), os.path.join(dirs[lvl], f"K{100 - int(m.group(2)):02d}{name}"))
    return True


def enabled(ctx: ExecContext, name: str) -> bool:
    """Return True if service `name` starts at boot (an S link in rcS.d or rc2.d-rc5.d).

    CLI example: rx '*' service.enabled ssh
    """
    su.script(ctx, name)
    return any(link.startswith("S") for lvl, names in _links(ctx, name).items() if lvl in BOOT_LEVELS
               for link in names)


def disabled(ctx: ExecContext, name: str) -> bool:
    """Return True if service `name` does not start at boot.

    CLI example: rx '*' service.disabled ssh
    """
    return not enabled(ctx, name)


def available(ctx: ExecContext, name: str) -> bool:
    """Return True if there is an init script for service `name`.

    CLI example: rx '*' service.available ssh
    """
    try:
        su.script(ctx, name)
    except CommandError:
        return False
    return True


def missing(ctx: ExecContext, name: str) -> bool:
    """Return True if there is no init script for service `name`.

    CLI example: rx '*' service.missing ssh
    """
    return not available(ctx, name)


def get_all(ctx: ExecContext) -> list[str]:
    """Return the names of all services (the init scripts), sorted.

    CLI example: rx '*' service.get_all
    """
    return su.scripts(su.init_dir(ctx))


def get_running(ctx: ExecContext) -> list[str]:
    """Return the services whose script's `status` says they run, sorted.

    CLI example: rx '*' service.get_running
    """
    return [n for n in su.scripts(su.init_dir(ctx)) if _running(ctx, n)]


def get_enabled(ctx: ExecContext) -> list[str]:
    """Return the services that start at boot, sorted.

    CLI example: rx '*' service.get_enabled
    """
    return [n for n in su.scripts(su.init_dir(ctx)) if enabled(ctx, n)]


def get_disabled(ctx: ExecContext) -> list[str]:
    """Return the services that do not start at boot, sorted.

    CLI example: rx '*' service.get_disabled
    """
    return [n for n in su.scripts(su.init_dir(ctx)) if not enabled(ctx, n)]


def show(ctx: ExecContext, name: str) -> dict:
    """Return what is known of service `name`: {name, script, running, enabled, links {runlevel: [links]}, and the
    script's LSB header fields (Provides, Default-Start, Short-Description, ...)}.

    CLI example: rx '*' service.show ssh
    """
    path = su.script(ctx, name)
    return {"name": name, "script": path, "running": _running(ctx, name), "enabled": enabled(ctx, name),
            "links": _links(ctx, name), **su.lsb_header(path)}
