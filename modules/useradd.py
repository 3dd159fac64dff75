"""Local user accounts (the `user` module): read through the passwd/group databases (`pwd`, `grp`: NSS, so
LDAP/SSSD users show too), changed with shadow-utils (`useradd`, `usermod`, `userdel`).

Functions that change an account return True, or fail with the tool's own message (retcode 1) where Salt
returns False.
"""

from __future__ import annotations

from typing import Any

from rx.modules import CommandError
from rx.modules._syscmd import check, check_name, names_list

__all__ = ["info", "getent", "list_users", "list_groups", "primary_group", "add", "delete", "chshell", "chhome",
           "chgroups", "chuid", "chgid", "chfullname"]

GECOS_FIELDS = ("fullname", "roomnumber", "workphone", "homephone", "other")


def __virtual__() -> Any:
    import shutil
    missing = [t for t in ("useradd", "usermod", "userdel") if not shutil.which(t)]
    return (False, f"shadow-utils not found ({', '.join(missing)} missing from PATH)") if missing else True


def _pwnam(name: str) -> Any:
    import pwd
    try:
        return pwd.getpwnam(check_name(name, "user"))
    except KeyError:
        return None


def _existing(name: str) -> Any:
    entry = _pwnam(name)
    if entry is None:
        raise CommandError(f"user {name!r} does not exist")
    return entry


def _groups_of(entry: Any) -> list[str]:
    import grp
    names = {g.gr_name for g in grp.getgrall() if entry.pw_name in g.gr_mem}
    try:
        names.add(grp.getgrgid(entry.pw_gid).gr_name)
    except KeyError:
        pass
    return sorted(names)


def _format(entry: Any) -> dict:
    gecos = (entry.pw_gecos.split(",", 4) + [""] * 5)[:5]
    return {"name": entry.pw_name, "passwd": entry.pw_passwd, "uid": entry.pw_uid, "gid": entry.pw_gid,
            "home": entry.pw_dir, "shell": entry.pw_shell, "groups": _groups_of(entry),
            **dict(zip(GECOS_FIELDS, gecos))}


def info(name: str) -> dict:
    """Return the account `name`: name, passwd, uid, gid, home, shell, groups (primary and supplementary, sorted),
    fullname, roomnumber, workphone, homephone, other (the GECOS fields); {} if there is no such user.

    CLI example: rx '*' user.info root
    """
    entry = _pwnam(name)
    return _format(entry) if entry else {}


def getent(refresh: bool = False) -> list[dict]:
    """Return every account (as `user.info` shows it), in passwd order.  `refresh` is accepted for Salt's
    signature; nothing is cached.

    CLI example: rx '*' user.getent
    """
    import pwd
    return [_format(e) for e in pwd.getpwall()]


def list_users() -> list[str]:
    """Return the names of every account, sorted.

    CLI example: rx '*' user.list_users
    """
    import pwd
    return sorted({e.pw_name for e in pwd.getpwall()})


def list_groups(name: str) -> list[str]:
    """Return the groups user `name` belongs to (primary and supplementary), sorted; [] if there is no such user.

    CLI example: rx '*' user.list_groups root
    """
    entry = _pwnam(name)
    return _groups_of(entry) if entry else []


def primary_group(name: str) -> str:
    """Return the name of user `name`'s primary group.

    CLI example: rx '*' user.primary_group root
    """
    import grp
    entry = _existing(name)
    try:
        return grp.getgrgid(entry.pw_gid).gr_name
    except KeyError:
        return str(entry.pw_gid)


def _gecos(fullname: str = "", roomnumber: str = "", workphone: str = "", homephone: str = "",
           other: str = "") -> str:
    parts = [str(v) for v in (fullname, roomnumber, workphone, homephone, other)]
    for v in parts:
        if any(c in v for c in ":,\n"):
            raise CommandError(f"GECOS fields may not contain ':', ',' or newlines, got {v!r}")
    return ",".join(parts).rstrip(",")


def _id(value: Any, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).isdigit():
        raise CommandError(f"{what} must be a whole number >= 0, got {value!r}")
    return str(int(value))


def _path(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.startswith("/") or "\0" in value or "\n" in value or ":" in value:
        raise CommandError(f"{what} must be an absolute path (no ':', NUL or newline), got {value!r}")
    return value


def add(name: str, uid: int | None = None, gid: int | str | None = None, groups: list | str | None = None,
        home: str | None = None, shell: str | None = None, unique: bool = True, system: bool = False,
        fullname: str = "", roomnumber: str = "", workphone: str = "", homephone: str = "", other: str = "",
        createhome: bool = True, usergroup: bool | None = None) -> bool:
    """Create user `name` (useradd); return True.  `gid` is a group name or number; `groups` the supplementary
    groups (list or comma-separated); `usergroup` True/False forces/refuses a group of the same name (default:
    the system's USERGROUPS_ENAB).  Fails with useradd's message if the user exists or an argument is refused.

    CLI example: rx '*' user.add alice shell=/bin/bash groups=sudo,adm fullname='Alice Liddell'
    """
    check_name(name, "user")
    argv = ["useradd"]
    if uid is not None:
        argv += ["-u", _id(uid, "uid")]
    if gid is not None:
        argv += ["-g", _id(gid, "gid") if str(gid).isdigit() else check_name(gid, "group")]
    if groups:
        argv += ["-G", ",".join(names_list(groups, "group"))]
    if home is not None:
        argv += ["-d", _path(home, "home")]
    if shell is not None:
        argv += ["-s", _path(shell, "shell")]
    if not unique:
        argv += ["-o"]
    if system:
        argv += ["-r"]
    gecos = _gecos(fullname, roomnumber, workphone, homephone, other)
    if gecos:
        argv += ["-c", gecos]
    argv += ["-m"] if createhome else ["-M"]
    if usergroup is True:
        argv += ["-U"]
    elif usergroup is False:
        argv += ["-N"]
    check(argv + ["--", name])
    return True


def delete(name: str, remove: bool = False, force: bool = False) -> bool:
    """Delete user `name` (userdel); `remove` also deletes the home directory and mail spool, `force` even while
    the user is logged in.  Return True; fails if there is no such user.

    CLI example: rx '*' user.delete alice remove=True
    """
    _existing(name)
    check(["userdel"] + (["-r"] if remove else []) + (["-f"] if force else []) + ["--", name])
    return True


def _usermod(name: str, *opts: str) -> bool:
    _existing(name)
    check(["usermod", *opts, "--", name])
    return True


def chshell(name: str, shell: str) -> bool:
    """Set user `name`'s login shell; return True.

    CLI example: rx '*' user.chshell alice /bin/zsh
    """
    return _usermod(name, "-s", _path(shell, "shell"))


def chhome(name: str, home: str, persist: bool = False) -> bool:
    """Set user `name`'s home directory; `persist` moves the old home's contents there.  Return True.

    CLI example: rx '*' user.chhome alice /srv/alice persist=True
    """
    return _usermod(name, "-d", _path(home, "home"), *(["-m"] if persist else []))


def chgroups(name: str, groups: list | str, append: bool = False) -> bool:
    """Set user `name`'s supplementary groups to `groups` (list or comma-separated; '' or [] clears them), or
    with `append` add them to the current ones.  Return True.

    CLI example: rx '*' user.chgroups alice sudo,adm append=True
    """
    wanted = names_list(groups, "group")
    if append and not wanted:
        return bool(_existing(name))
    return _usermod(name, *(["-a"] if append else []), "-G", ",".join(wanted))


def chuid(name: str, uid: int) -> bool:
    """Set user `name`'s uid (files they own elsewhere are not changed); return True.

    CLI example: rx '*' user.chuid alice 4242
    """
    return _usermod(name, "-u", _id(uid, "uid"))


def chgid(name: str, gid: int | str) -> bool:
    """Set user `name`'s primary group (a gid or group name); return True.

    CLI example: rx '*' user.chgid alice 100
    """
    return _usermod(name, "-g", _id(gid, "gid") if str(gid).isdigit() else check_name(gid, "group"))


def chfullname(name: str, fullname: str) -> bool:
    """Set the full name (first GECOS field) of user `name`, keeping the other fields; return True.

    CLI example: rx '*' user.chfullname alice 'Alice Liddell'
    """
    current = _format(_existing(name))
    fields = {k: current[k] for k in GECOS_FIELDS}
    fields["fullname"] = fullname
    return _usermod(name, "-c", _gecos(**fields))
