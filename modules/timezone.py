"""The system's time zone, with Salt's function names.

The zone is the target of /etc/localtime under the zoneinfo directory (and /etc/timezone where
the system keeps that file, as Debian does).  With systemd running, `set_zone` goes through
`timedatectl`; without it, rx links /etc/localtime itself.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

from rx.modules import CommandError

__all__ = ["get_zone", "set_zone", "get_offset", "zone_compare"]

ZONEINFO = "/usr/share/zoneinfo"
LOCALTIME = "/etc/localtime"
TIMEZONE_FILE = "/etc/timezone"
_ZONE_RE = re.compile(r"[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*")


def _zone_from_link(target: str) -> str | None:
    marker = "/zoneinfo/"
    if marker in target:
        zone = target.split(marker, 1)[1]
        for prefix in ("posix/", "right/"):
            zone = zone[len(prefix):] if zone.startswith(prefix) else zone
        return zone
    return None


def get_zone() -> str:
    """Return the time zone name, e.g. 'Europe/Paris' or 'Etc/UTC' ('UTC' when nothing sets one).

    CLI example: rx '*' timezone.get_zone
    """
    try:
        zone = _zone_from_link(os.readlink(LOCALTIME))
        if zone:
            return zone
    except OSError:
        pass
    try:
        with open(TIMEZONE_FILE, encoding="utf-8") as f:
            zone = f.read().strip()
        if zone:
            return zone
    except OSError:
        pass
    if not os.path.exists(LOCALTIME):
        return "UTC"
    raise CommandError(f"{LOCALTIME} is not a link into {ZONEINFO} and there is no {TIMEZONE_FILE}: "
                       "the zone's name cannot be told")


def check_zone(zone: Any) -> str:
    """`zone` if it names a zone file under ZONEINFO (no '..', no absolute path); else a CommandError."""
    if not isinstance(zone, str) or not _ZONE_RE.fullmatch(zone) or ".." in zone.split("/"):
        raise CommandError(f"{zone!r} is not a time zone name like 'Europe/Paris'")
    path = os.path.join(ZONEINFO, zone)
    if not os.path.isfile(path):
        raise CommandError(f"unknown time zone {zone!r} (no {path})")
    with open(path, "rb") as f:
        if f.read(4) != b"TZif":
            raise CommandError(f"{path} is not a zone file")
    return zone


def set_zone(timezone: str) -> bool:
    """Set the system's time zone (a name under /usr/share/zoneinfo); return True.  Running
    processes keep the zone they started with until they re-read it.

    CLI example: rx '*' timezone.set_zone 'America/New_York'
    """
    zone = check_zone(timezone)
    if os.path.isdir("/run/systemd/system"):
        from rx.modules._proc import run
        p = run(["timedatectl", "set-timezone", zone], timeout=60)
        if p.retcode != 0:
            raise CommandError(f"timedatectl set-timezone {zone} failed: {(p.stderr or p.stdout).strip()}")
        return True
    tmp = f"{LOCALTIME}.rx-{os.getpid()}"
    try:
        os.symlink(os.path.join(ZONEINFO, zone), tmp)
        os.replace(tmp, LOCALTIME)
        if os.path.exists(TIMEZONE_FILE):
            with open(TIMEZONE_FILE + ".rx-tmp", "w", encoding="utf-8") as f:
                f.write(zone + "\n")
            os.replace(TIMEZONE_FILE + ".rx-tmp", TIMEZONE_FILE)
    except OSError as exc:
        for leftover in (tmp, TIMEZONE_FILE + ".rx-tmp"):
            if os.path.lexists(leftover):
                os.remove(leftover)
        raise CommandError(f"cannot set the time zone: {exc.filename}: {exc.strerror}") from None
    return True


def get_offset() -> str:
    """Return the current offset from UTC as Salt does, e.g. '+0000' or '-0500' (reads the zone now).

    CLI example: rx '*' timezone.get_offset
    """
    time.tzset()
    return time.strftime("%z", time.localtime())


def zone_compare(timezone: str) -> bool:
    """Return True if the system's zone is `timezone` (same name, or same zone data).

    CLI example: rx '*' timezone.zone_compare 'Etc/UTC'
    """
    zone = check_zone(timezone)
    if zone == get_zone():
        return True
    try:
        with open(LOCALTIME, "rb") as a, open(os.path.join(ZONEINFO, zone), "rb") as b:
            return a.read() == b.read()
    except OSError:
        return False
