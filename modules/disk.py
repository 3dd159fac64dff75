"""Mounted filesystems' space and inodes (from `df -P`) and block device attributes (from `blkid`).

Return shapes follow Salt's `disk` module: the numbers are df's text, keyed by mount point.
"""

from __future__ import annotations

import os
import re
import subprocess

from rx.modules import CommandError

__all__ = ["usage", "inodeusage", "percent", "blkid"]

_TIMEOUT = 60
# df -P: filesystem, four numbers (the last a percentage or "-"), the mount point (may hold spaces)
_DF_LINE = re.compile(r"^(?P<fs>.+?)\s+(?P<a>\d+)\s+(?P<b>\d+)\s+(?P<c>\d+)\s+(?P<pct>\d+%|-)\s+(?P<mount>/.*)$")
_DF_FLAGS = "alkP"


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, capture_output=True, text=True, errors="replace", timeout=_TIMEOUT)
    except FileNotFoundError:
        raise CommandError(f"{argv[0]} is not installed on this minion") from None
    except subprocess.TimeoutExpired:
        raise CommandError(f"{argv[0]} did not finish within {_TIMEOUT} s (a hung network mount?)") from None


def _flags(args: str | None, caller: str) -> list[str]:
    """Extra df flags from `args` ("a": all filesystems, "l": local only); anything else is refused."""
    if not args:
        return []
    bad = sorted(set(str(args).lstrip("-")) - set(_DF_FLAGS))
    if bad:
        raise CommandError(f"{caller}: unsupported df flag(s) {''.join(bad)!r}; allowed: {_DF_FLAGS}")
    return ["-" + str(args).lstrip("-")]


def _parse_df(text: str, keys: tuple[str, str, str, str]) -> dict:
    """`df -P` or `df -iP` output as {mount: {filesystem, <keys>...}}, the values as df prints them."""
    ret = {}
    for line in text.splitlines()[1:]:
        m = _DF_LINE.match(line)
        if m:
            ret[m["mount"]] = {"filesystem": m["fs"], **dict(zip(keys, (m["a"], m["b"], m["c"], m["pct"])))}
    return ret


def _df(extra: list[str], keys: tuple[str, str, str, str]) -> dict:
    out = _run(["df", "-P", *extra])
    parsed = _parse_df(out.stdout, keys)
    if out.returncode != 0 and not parsed:
        raise CommandError(f"df failed: {out.stderr.strip()}")
    return parsed  # df exits 1 when one mount cannot be read, and still lists the others


def usage(args: str | None = None) -> dict:
    """Return the space of each mounted filesystem: {mount: {filesystem, 1K-blocks, used,
    available, capacity}} (the values as `df -P` prints them: "1024", "23%").

    `args`: extra df flags, "a" (include pseudo filesystems) and/or "l" (local only).
    CLI example: rx '*' disk.usage
    """
    return _df(_flags(args, "disk.usage"), ("1K-blocks", "used", "available", "capacity"))


def inodeusage(args: str | None = None) -> dict:
    """Return the inodes of each mounted filesystem: {mount: {inodes, used, free, use, filesystem}}
    (the values as `df -iP` prints them).

    CLI example: rx '*' disk.inodeusage
    """
    return _df(["-i", *_flags(args, "disk.inodeusage")], ("inodes", "used", "free", "use"))


def percent(args: str | None = None) -> dict | str:
    """Return the used capacity of each mounted filesystem: {mount: "23%"}; given a mount
    point as `args`, only its capacity ("23%").

    CLI example: rx '*' disk.percent /var
    """
    used = {m: v["capacity"] for m, v in _df([], ("1K-blocks", "used", "available", "capacity")).items()}
    if not args:
        return used
    if args not in used:
        raise CommandError(f"{args!r} is not a mount point; mount points: {', '.join(sorted(used))}")
    return used[args]


def _parse_blkid_export(text: str) -> dict:
    """`blkid -o export` output (KEY=value lines, a blank line between devices) as {device: {KEY: value}}."""
    ret: dict[str, dict] = {}
    for block in re.split(r"\n\s*\n", text.strip()):
        attrs = {}
        for line in block.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                attrs[key] = re.sub(r"\\(.)", r"\1", value)  # blkid escapes shell-special characters
        device = attrs.pop("DEVNAME", None)
        if device:
            ret[device] = attrs
    return ret


def blkid(device: str | None = None, token: str | None = None) -> dict:
    """Return the attributes blkid finds: {device: {UUID, TYPE, LABEL, PARTUUID, ...}}; {} if none match.

    `device` limits it to one device (or image file); `token` to devices with an attribute,
    as NAME=value (`TYPE=ext4`, `LABEL=data`).
    CLI example: rx '*' disk.blkid token=TYPE=ext4
    """
    argv = ["blkid", "-o", "export"]
    if token:
        if "=" not in str(token) or str(token).startswith("-"):
            raise CommandError(f"token must look like NAME=value, got {token!r}")
        argv += ["-t", str(token)]
    if device:
        if not str(device).startswith("/"):
            raise CommandError(f"device must be an absolute path, got {device!r}")
        if not os.path.exists(str(device)):
            raise CommandError(f"no such device: {device}")
        argv[1:1] = ["-c", "/dev/null"]  # probe the device itself; leave blkid's cache alone
        argv.append(str(device))
    out = _run(argv)
    if out.returncode == 2:  # nothing matched (or nothing identified)
        return {}
    if out.returncode != 0:
        raise CommandError(f"blkid failed (exit {out.returncode}): {out.stderr.strip()}")
    return _parse_blkid_export(out.stdout)
