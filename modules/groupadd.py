"""Local groups (the `group` module): read through the group database (`grp`, NSS), changed with
shadow-utils (`groupadd`, `groupdel`, `groupmod`, `gpasswd`).

Functions that change a group return True, or fail with the tool's own message (retcode 1) where Salt
returns False.
"""

from __future__ import annotations

from typing import Any

from rx.modules import CommandError
from rx.modules._syscmd import check, check_name, names_list

__all__ = ["info", "getent", "list_groups", "add", "delete", "chgid", "adduser", "deluser", "members"]


def __virtual__() -> Any:
    import shutil
    missing = [t for t in ("groupadd", "groupdel", "gpasswd") if not shutil.which(t)]
    return (False, f"shadow-utils not found ({', '.join(missing)} missing from PATH)") if missing else True


def _grnam(name: str) -> Any:
    import grp
    try:
        return grp.getgrnam(check_name(name, "group"))
    except KeyError:
        return None


def _existing(name: str) -> Any:
    entry = _grnam(name)
    if entry is None:
        raise CommandError(f"group {name!r} does not exist")
    return entry


def _format(entry: Any) -> dict:
    return {"name": entry.gr_name, "passwd": entry.gr_passwd, "gid": entry.gr_gid, "members": list(entry.gr_mem)}


def info(name: str) -> dict:
    """Return group `name`: name, passwd, gid, members (the supplementary members, as listed in the group
    database); {} if there is no such group.

    CLI example: rx '*' group.info sudo
    """
    entry = _grnam(name)
    return _format(entry) if entry else {}


def getent(refresh: bool = False) -> list[dict]:
    """Return every group (as `group.info` shows it), in the database's order.  `refresh` is accepted for
    Salt's signature; nothing is cached.

    CLI example: rx '*' group.getent
    """
    import grp
    return [_format(e) for e in grp.getgrall()]


def list_groups() -> list[str]:
    """Return the names of every group, sorted.

    CLI example: rx '*' group.list_groups
    """
    import grp
    return sorted({e.gr_name for e in grp.getgrall()})


def add(name: str, gid: int | None = None, system: bool = False, non_unique: bool = False) -> bool:
    """Create group `name` (groupadd), with `gid` if given (`non_unique` allows a gid already used); `system`
    makes a system group.  Return True; fails with groupadd's message if the group exists.

    CLI example: rx '*' group.add deploy gid=4242
    """
    check_name(name, "group")
    argv = ["groupadd"]
    if gid is not None:
        if isinstance(gid, bool) or not str(gid).isdigit():
            raise CommandError(f"gid must be a whole number >= 0, got {gid!r}")
        argv += ["-g", str(int(gid))] + (["-o"] if non_unique else [])
    if system:
        argv += ["-r"]
    check(argv + ["--", name])
    return True


def delete(name: str) -> bool:
    """Delete group `name` (groupdel); return True.  Fails if there is no such group or it is a user's primary
    group.

    CLI example: rx '*' group.delete deploy
    """
    _existing(name)
    check(["groupdel", "--", name])
    return True


def chgid(name: str, gid: int) -> bool:
    """Change group `name`'s gid (groupmod -g); return True.

    CLI example: rx '*' group.chgid deploy 4343
    """
    _existing(name)
    if isinstance(gid, bool) or not str(gid).isdigit():
        raise CommandError(f"gid must be a whole number >= 0, got {gid!r}")
    check(["groupmod", "-g", str(int(gid)), "--", name])
    return True


def _user(username: str) -> str:
    import pwd
    try:
        pwd.getpwnam(check_name(username, "user"))
    except KeyError:
        raise CommandError(f"user {username!r} does not exist") from None
    return username


def adduser(name: str, username: str) -> bool:
    """Add user `username` to group `name` (gpasswd -a); return True (also when already a member).

    CLI example: rx '*' group.adduser sudo alice
    """
    entry = _existing(name)
    if _user(username) not in entry.gr_mem:
        check(["gpasswd", "-a", username, name])
    return True


def deluser(name: str, username: str) -> bool:
    """Remove user `username` from group `name`'s members (gpasswd -d); return True (also when not a member).

    CLI example: rx '*' group.deluser sudo alice
    """
    entry = _existing(name)
    if check_name(username, "user") in entry.gr_mem:
        check(["gpasswd", "-d", username, name])
    return True


def members(name: str, members_list: list | str) -> bool:
    """Set group `name`'s members to exactly `members_list` (list or comma-separated; '' empties the group);
    return True.

    CLI example: rx '*' group.members deploy alice,bob
    """
    _existing(name)
    users = [_user(u) for u in names_list(members_list, "user")]
    check(["gpasswd", "-M", ",".join(users), name])
    return True
