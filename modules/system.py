"""Reboot, shut down and read the clock, with Salt's names (Linux: through `shutdown`).

`at_time` is when: None or 'now' at once, a number of minutes from now (5 or '+5'), or a time of
day 'HH:MM'.  The command line is built and checked before anything runs (`shutdown_argv`).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

from rx.modules import CommandError, Result

__all__ = ["reboot", "shutdown", "get_system_time", "get_system_date_time"]

_CLOCK = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")
_OFFSET = re.compile(r"([+-]?)(\d{2})(\d{2})")


def _when(at_time: Any) -> str:
    """`shutdown`'s TIME argument for `at_time`."""
    if at_time is None or (isinstance(at_time, str) and at_time.strip().lower() in ("", "now")):
        return "now"
    if isinstance(at_time, bool):
        raise CommandError(f"at_time {at_time!r}: give minutes (5), '+5', 'HH:MM' or 'now'")
    text = str(at_time).strip()
    if re.fullmatch(r"\+?\d+", text):
        minutes = int(text.lstrip("+"))
        return "now" if minutes == 0 else f"+{minutes}"
    if _CLOCK.fullmatch(text):
        return text
    raise CommandError(f"at_time {at_time!r}: give minutes (5), '+5', 'HH:MM' or 'now'")


def shutdown_argv(action: str, at_time: Any = None) -> list[str]:
    """The argv that reboots ('reboot') or halts ('shutdown') at `at_time`."""
    flag = {"reboot": "-r", "shutdown": "-h"}.get(action)
    if flag is None:
        raise CommandError(f"unknown action {action!r}")
    return ["shutdown", flag, _when(at_time)]


def _run(argv: list[str]) -> Result:
    from rx.modules._proc import run
    p = run(argv, timeout=120, merge_stderr=True)
    return Result(p.stdout.rstrip(), p.retcode)


def reboot(at_time: Any = None) -> Any:
    """Reboot the system at `at_time` (default now: minutes from now, or 'HH:MM'); return the
    output of `shutdown -r` (the job's retcode is its exit status).

    CLI example: rx '*' system.reboot 5
    """
    return _run(shutdown_argv("reboot", at_time))


def shutdown(at_time: Any = None) -> Any:
    """Halt the system at `at_time` (default now: minutes from now, or 'HH:MM'); return the output
    of `shutdown -h`.

    CLI example: rx '*' system.shutdown 10
    """
    return _run(shutdown_argv("shutdown", at_time))


def _now(utc_offset: Any) -> datetime:
    """Now, in the local zone or at `utc_offset` ('+0500', '-0700')."""
    if utc_offset in (None, ""):
        return datetime.now().astimezone()
    m = _OFFSET.fullmatch(str(utc_offset).strip())
    if not m or int(m.group(3)) > 59 or int(m.group(2)) > 14:
        raise CommandError(f"utc_offset {utc_offset!r}: give [+-]HHMM, e.g. '+0530'")
    delta = timedelta(hours=int(m.group(2)), minutes=int(m.group(3)))
    return datetime.now(timezone(-delta if m.group(1) == "-" else delta))


def get_system_time(utc_offset: str | None = None) -> str:
    """Return the time of day as Salt does: 'HH:MM:SS AM/PM' (local, or at utc_offset '+0530').

    CLI example: rx '*' system.get_system_time
    """
    return _now(utc_offset).strftime("%I:%M:%S %p")


def get_system_date_time(utc_offset: str | None = None) -> str:
    """Return the date and time as 'YYYY-MM-DD HH:MM:SS' (local, or at utc_offset '+0530').

    CLI example: rx '*' system.get_system_date_time
    """
    return _now(utc_offset).strftime("%Y-%m-%d %H:%M:%S")
