"""Services under OpenRC (the `service` module on Alpine, Gentoo, Devuan-with-OpenRC: /run/openrc exists,
OpenRC's own test that it booted the system): `rc-service` for actions, `rc-update` for runlevels,
`rc-status` for what runs.  Actions that fail raise an error carrying OpenRC's output (retcode 1) where Salt
returns False.
"""

from __future__ import annotations

import os
from typing import Any

from rx.modules import CommandError
from rx.modules import _svcutil as su
from rx.modules._syscmd import check_name, run

__all__ = ["status", "start", "stop", "restart", "reload", "enable", "disable", "enabled", "disabled",
           "available", "missing", "get_all", "get_running", "get_enabled", "get_disabled", "show"]


def __virtual__() -> Any:
    import shutil
    if not os.path.isdir("/run/openrc"):
        return False, "OpenRC is not the init system here (/run/openrc does not exist)"
    if not (shutil.which("rc-service") and shutil.which("rc-update")):
        return False, "rc-service/rc-update not found"
    return True


def _rc(*args: str, timeout: float = 60.0) -> Any:
    return run(list(args), timeout, su.PLAIN_ENV, clean_env=True, spawns=True)


def parse_rc_update(text: str) -> dict[str, list[str]]:
    """Parse `rc-update show -v` (or `rc-update show`): {service: [runlevels]} ([] when in none)."""
    out = {}
    for line in text.splitlines():
        name, sep, levels = line.partition("|")
        if sep and name.strip():
            out[name.strip()] = levels.split()
    return out


def parse_servicelist(text: str) -> dict[str, str]:
    """Parse `rc-status --servicelist` (or the service lines of `rc-status -a`): {service: state}, the state
    as OpenRC shows it in brackets (started, stopped, crashed, ...)."""
    out = {}
    for line in text.splitlines():
        if line.startswith(" ") and line.rstrip().endswith("]") and "[" in line:
            name, _, state = line.strip().rstrip("]").partition("[")
            out[name.strip()] = state.strip()
    return out


def _running(name: str) -> bool:
    return _rc("rc-service", check_name(name, "service"), "status").returncode == 0


def status(name: str, sig: str | None = None) -> Any:
    """Return True if service `name` is started (`rc-service NAME status` exits 0).  With a glob return
    {service: bool} for each matching service; with `sig`, whether a process matching that pattern runs.

    CLI example: rx '*' service.status sshd
    """
    return su.status_of(name, sig, get_all, _running)


def _do(name: str, action: str) -> bool:
    check_name(name, "service")
    return su.action_result(f"rc-service {name} {action}", _rc("rc-service", name, action, timeout=su.SERVICE_TIMEOUT))


def start(name: str) -> bool:
    """Start service `name`; return True.

    CLI example: rx '*' service.start sshd
    """
    return _do(name, "start")


def stop(name: str) -> bool:
    """Stop service `name`; return True.

    CLI example: rx '*' service.stop sshd
    """
    return _do(name, "stop")


def restart(name: str) -> bool:
    """Restart service `name`; return True.

    CLI example: rx '*' service.restart sshd
    """
    return _do(name, "restart")


def reload(name: str) -> bool:
    """Have service `name` reload its configuration (its script's `reload`); return True.

    CLI example: rx '*' service.reload sshd
    """
    return _do(name, "reload")


def _runlevels() -> dict[str, list[str]]:
    p = _rc("rc-update", "show", "-v")
    if p.returncode != 0:
        raise CommandError(f"rc-update show -v failed: {p.stdout.strip()}")
    return parse_rc_update(p.stdout)


def _levels(runlevels: Any) -> list[str]:
    if runlevels in (None, "", []):
        return ["default"]
    items = runlevels.split(",") if isinstance(runlevels, str) else runlevels
    if not isinstance(items, list):
        raise CommandError(f"runlevels must be a list or a comma-separated string, got {runlevels!r}")
    return [check_name(str(r).strip(), "runlevel") for r in items]


def enable(name: str, runlevels: list | str | None = None) -> bool:
    """Start service `name` at boot: add it to `runlevels` (default: the `default` runlevel); return True.

    CLI example: rx '*' service.enable sshd runlevels=default
    """
    check_name(name, "service")
    for level in _levels(runlevels):
        su.action_result(f"rc-update add {name} {level}", _rc("rc-update", "add", name, level))
    return True


def disable(name: str, runlevels: list | str | None = None) -> bool:
    """Remove service `name` from `runlevels` (default: every runlevel it is in); return True.

    CLI example: rx '*' service.disable sshd
    """
    current = _runlevels().get(check_name(name, "service"), [])
    for level in _levels(runlevels) if runlevels else current:
        if level in current:
            su.action_result(f"rc-update del {name} {level}", _rc("rc-update", "del", name, level))
    return True


def enabled(name: str, runlevels: list | str | None = None) -> bool:
    """Return True if service `name` is in a runlevel (in each of `runlevels`, when given).

    CLI example: rx '*' service.enabled sshd
    """
    current = _runlevels().get(check_name(name, "service"), [])
    return all(r in current for r in _levels(runlevels)) if runlevels else bool(current)


def disabled(name: str) -> bool:
    """Return True if service `name` is in no runlevel.

    CLI example: rx '*' service.disabled sshd
    """
    return not enabled(name)


def get_all() -> list[str]:
    """Return every service OpenRC knows (`rc-service -l`), sorted.

    CLI example: rx '*' service.get_all
    """
    return sorted(line.strip() for line in _rc("rc-service", "-l").stdout.splitlines() if line.strip())


def available(name: str) -> bool:
    """Return True if OpenRC knows service `name`.

    CLI example: rx '*' service.available sshd
    """
    return check_name(name, "service") in get_all()


def missing(name: str) -> bool:
    """Return True if OpenRC does not know service `name`.

    CLI example: rx '*' service.missing sshd
    """
    return not available(name)


def get_running() -> list[str]:
    """Return the started services (`rc-status --servicelist`), sorted.

    CLI example: rx '*' service.get_running
    """
    states = parse_servicelist(_rc("rc-status", "--servicelist").stdout)
    return sorted(n for n, state in states.items() if state == "started")


def get_enabled() -> list[str]:
    """Return the services in some runlevel, sorted.

    CLI example: rx '*' service.get_enabled
    """
    return sorted(n for n, levels in _runlevels().items() if levels)


def get_disabled() -> list[str]:
    """Return the services in no runlevel, sorted.

    CLI example: rx '*' service.get_disabled
    """
    return sorted(n for n, levels in _runlevels().items() if not levels)


def show(name: str) -> dict:
    """Return {name, running, enabled, runlevels} for service `name`.

    CLI example: rx '*' service.show sshd
    """
    if not available(name):
        raise CommandError(f"service {name!r} is not available")
    levels = _runlevels().get(name, [])
    return {"name": name, "running": _running(name), "enabled": bool(levels), "runlevels": levels}
