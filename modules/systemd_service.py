"""Services under systemd (the `service` module where systemd is the init system: /run/systemd/system
exists, the test sd_booted(3) and Salt make).  A name without a unit suffix means `<name>.service`.
Actions that fail raise an error carrying systemctl's message (retcode 1) where Salt returns False.
"""

from __future__ import annotations

import os
from typing import Any

from rx.modules import CommandError
from rx.modules import _svcutil as su
from rx.modules._syscmd import check_name, run

__all__ = ["status", "start", "stop", "restart", "reload", "enable", "disable", "enabled", "disabled",
           "available", "missing", "get_all", "get_running", "get_enabled", "get_disabled", "show"]

UNIT_SUFFIXES = (".service", ".socket", ".timer", ".target", ".mount", ".automount", ".path", ".slice",
                 ".scope", ".swap", ".device")
ENABLED_STATES = ("enabled", "enabled-runtime")
LIST_PROPERTIES = ("Names", "Requires", "Requisite", "Wants", "BindsTo", "PartOf", "RequiredBy", "WantedBy",
                   "Conflicts", "ConflictedBy", "Before", "After", "Triggers", "TriggeredBy", "Documentation")
SYSTEMCTL_ENV = {"SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0", "LC_ALL": "C.UTF-8"}


def __virtual__() -> Any:
    if os.path.isdir("/run/systemd/system"):
        return True
    try:
        with open("/proc/1/comm") as f:
            init = f.read().strip()
    except OSError:
        init = "unknown"
    return False, f"systemd is not the init system here (/run/systemd/system does not exist; PID 1 is {init!r})"


def _unit(name: str) -> str:
    name = check_name(name, "service")
    return name if name.endswith(UNIT_SUFFIXES) else f"{name}.service"


def _short(unit: str) -> str:
    return unit.removesuffix(".service")


def _systemctl(*args: str, timeout: float = 60.0) -> Any:
    return run(["systemctl", "--no-pager", *args], timeout, SYSTEMCTL_ENV)


def _do(action: str, name: str, *flags: str) -> bool:
    unit = _unit(name)
    p = _systemctl(action, *flags, unit, timeout=su.SERVICE_TIMEOUT)
    if p.returncode != 0:
        said = " / ".join(ln.strip() for ln in (p.stderr or p.stdout).splitlines() if ln.strip()) or "no output"
        raise CommandError(f"systemctl {action} {unit} failed (exit {p.returncode}): {said}")
    return True


def _active(name: str) -> bool:
    return _systemctl("is-active", "--quiet", _unit(name)).returncode == 0


def status(name: str, sig: str | None = None) -> Any:
    """Return True if service `name` is active (`systemctl is-active`).  With a glob (`'ssh*'`) return
    {service: bool} for each matching service; with `sig`, whether a process matching that pattern runs.

    CLI example: rx '*' service.status ssh
    """
    return su.status_of(name, sig, get_all, _active)


def start(name: str, no_block: bool = False) -> bool:
    """Start service `name` (with `no_block`, do not wait for it to finish starting); return True.

    CLI example: rx '*' service.start ssh
    """
    return _do("start", name, *(["--no-block"] if no_block else []))


def stop(name: str, no_block: bool = False) -> bool:
    """Stop service `name`; return True.

    CLI example: rx '*' service.stop ssh
    """
    return _do("stop", name, *(["--no-block"] if no_block else []))


def restart(name: str, no_block: bool = False) -> bool:
    """Restart service `name` (starts it if it was stopped); return True.

    CLI example: rx '*' service.restart ssh
    """
    return _do("restart", name, *(["--no-block"] if no_block else []))


def reload(name: str, no_block: bool = False) -> bool:
    """Have service `name` reload its configuration (`systemctl reload`); return True.

    CLI example: rx '*' service.reload ssh
    """
    return _do("reload", name, *(["--no-block"] if no_block else []))


def enable(name: str, now: bool = False) -> bool:
    """Start service `name` at boot (`systemctl enable`; with `now` also start it now); return True.

    CLI example: rx '*' service.enable ssh
    """
    return _do("enable", name, *(["--now"] if now else []))


def disable(name: str, now: bool = False) -> bool:
    """Do not start service `name` at boot (`systemctl disable`; with `now` also stop it); return True.

    CLI example: rx '*' service.disable ssh
    """
    return _do("disable", name, *(["--now"] if now else []))


def _unit_file_state(name: str) -> str:
    return _systemctl("is-enabled", _unit(name)).stdout.strip()


def enabled(name: str) -> bool:
    """Return True if service `name` starts at boot (`systemctl is-enabled` says enabled or enabled-runtime).

    CLI example: rx '*' service.enabled ssh
    """
    return _unit_file_state(name) in ENABLED_STATES


def disabled(name: str) -> bool:
    """Return True if service `name` does not start at boot.

    CLI example: rx '*' service.disabled ssh
    """
    return not enabled(name)


def available(name: str) -> bool:
    """Return True if systemd knows service `name` (a unit file, or a unit loaded some other way).

    CLI example: rx '*' service.available ssh
    """
    load = _systemctl("show", "-p", "LoadState", "--value", _unit(name)).stdout.strip()
    return load not in ("", "not-found")


def missing(name: str) -> bool:
    """Return True if systemd does not know service `name`.

    CLI example: rx '*' service.missing ssh
    """
    return not available(name)


def parse_unit_files(text: str) -> dict[str, str]:
    """Parse `systemctl list-unit-files --no-legend` lines: {unit: state} (a trailing preset column is ignored)."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            out[parts[0]] = parts[1]
    return out


def parse_units(text: str) -> dict[str, dict[str, str]]:
    """Parse `systemctl list-units --no-legend --plain` lines: {unit: {load, active, sub, description}}."""
    out = {}
    for line in text.splitlines():
        parts = line.lstrip("● *").split(None, 4)
        if len(parts) >= 4:
            out[parts[0]] = {"load": parts[1], "active": parts[2], "sub": parts[3],
                             "description": parts[4] if len(parts) > 4 else ""}
    return out


def _unit_files() -> dict[str, str]:
    p = _systemctl("list-unit-files", "--type=service", "--no-legend")
    if p.returncode != 0:
        raise CommandError(f"systemctl list-unit-files failed: {p.stderr.strip()}")
    return parse_unit_files(p.stdout)


def _units(*args: str) -> dict[str, dict[str, str]]:
    p = _systemctl("list-units", "--type=service", "--no-legend", "--plain", *args)
    if p.returncode != 0:
        raise CommandError(f"systemctl list-units failed: {p.stderr.strip()}")
    return parse_units(p.stdout)


def get_all() -> list[str]:
    """Return every service systemd knows (unit files, except templates, and loaded units), sorted, without
    the `.service` suffix.

    CLI example: rx '*' service.get_all
    """
    names = {u for u in _unit_files() if not u.endswith("@.service")} | set(_units("--all"))
    return sorted(_short(u) for u in names)


def get_running() -> list[str]:
    """Return the services running now, sorted.

    CLI example: rx '*' service.get_running
    """
    return sorted(_short(u) for u in _units("--state=running"))


def get_enabled() -> list[str]:
    """Return the services enabled to start at boot, sorted.

    CLI example: rx '*' service.get_enabled
    """
    return sorted(_short(u) for u, state in _unit_files().items() if state in ENABLED_STATES)


def get_disabled() -> list[str]:
    """Return the services whose unit file is disabled, sorted.

    CLI example: rx '*' service.get_disabled
    """
    return sorted(_short(u) for u, state in _unit_files().items() if state == "disabled")


def _exec_record(value: str) -> dict[str, str]:
    fields = {}
    for item in value.strip().strip("{}").split(" ; "):
        key, _, val = item.strip().partition("=")
        if key:
            fields[key] = val.strip()
    return fields


def parse_show(text: str) -> dict[str, Any]:
    """Parse `systemctl show` output: {Property: value}; `{ path=... ; argv[]=... }` records become dicts (a list
    of them when the property repeats, e.g. two ExecReload= lines), dependency properties lists of units."""
    out: dict[str, Any] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if not sep or not key:
            continue
        if value.startswith("{") and value.rstrip().endswith("}"):
            record = _exec_record(value)
            prev = out.get(key)
            out[key] = record if prev is None else (prev + [record] if isinstance(prev, list) else [prev, record])
        elif key in LIST_PROPERTIES:
            out[key] = value.split()
        else:
            out[key] = value
    return out


def show(name: str) -> dict:
    """Return the properties systemd has for unit `name` (`systemctl show`) as a dict: ActiveState, SubState,
    MainPID, UnitFileState, ExecStart (a dict: path, argv[], ...), After/Wants/... (lists).

    CLI example: rx '*' service.show ssh
    """
    unit = _unit(name)
    p = _systemctl("show", unit)
    if p.returncode != 0:
        raise CommandError(f"systemctl show {unit} failed: {p.stderr.strip()}")
    return parse_show(p.stdout)
