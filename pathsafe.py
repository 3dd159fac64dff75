"""Paths another local user must not control: the master's sock_dir and the sockets in it.

Whoever can replace `master_req.ipc` receives the root key from root's next `rx`; whoever can
write to the sock_dir, or to any directory above it, can replace the socket (or rename the
directory away and put their own in its place).  The master checks its sock_dir before it starts
and the client checks it, and the socket, before it sends the root key.
"""

from __future__ import annotations

import os
import stat
from typing import Collection

EXIT_UNSAFE = 77
"""Exit code of a daemon that refuses to start on a path others could control (sysexits EX_NOPERM)."""


class UnsafePath(Exception):
    """A path another local user could control; the message names the setting, the path and the fix."""


def _who(uid: int) -> str:
    try:
        import pwd
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except (KeyError, ImportError):
        return f"uid {uid}"


def _owners(owners: Collection[int]) -> str:
    return " or ".join(_who(u) for u in sorted(set(owners)))


def check_dir(path: str, owners: Collection[int], setting: str) -> None:
    """UnsafePath unless `path` (if it exists) is a directory owned by one of `owners` that group and others
    cannot write, and every existing directory above it (as written and once symlinks are resolved) is owned
    by root or one of `owners` and writable by group or others only if it is sticky, like /tmp."""
    path = os.path.abspath(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is not None:
        if stat.S_ISLNK(st.st_mode):
            raise UnsafePath(f"{setting}: {path!r} is a symbolic link; point {setting} at the directory itself")
        if not stat.S_ISDIR(st.st_mode):
            raise UnsafePath(f"{setting}: {path!r} is not a directory")
        if st.st_uid not in owners:
            raise UnsafePath(f"{setting}: {path!r} is owned by {_who(st.st_uid)}, not by {_owners(owners)}: "
                             "another user could replace the sockets in it; remove it (the master creates it)")
        if st.st_mode & 0o022:
            raise UnsafePath(f"{setting}: {path!r} is writable by group or others (mode "
                             f"{stat.S_IMODE(st.st_mode):04o}): make it 0700 (chmod 700 {path})")
    trusted = {0, *owners}
    for top in {path, os.path.realpath(path)}:
        for parent in _ancestors(top):
            _check_parent(parent, trusted, f"{setting}: {path!r}")


def check_socket(path: str, owners: Collection[int], setting: str) -> None:
    """UnsafePath unless `path` is a socket owned by one of `owners` (check its directory with check_dir)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise UnsafePath(f"{setting}: no socket at {path!r}: is the master running?") from None
    if not stat.S_ISSOCK(st.st_mode):
        raise UnsafePath(f"{setting}: {path!r} is not a socket")
    if st.st_uid not in owners:
        raise UnsafePath(f"{setting}: the socket {path!r} is owned by {_who(st.st_uid)}, not by {_owners(owners)}: "
                         "it is not the master's")


def _ancestors(path: str) -> list[str]:
    out = []
    while (parent := os.path.dirname(path)) != path:
        out.append(parent)
        path = parent
    return out


def _check_parent(path: str, trusted: set[int], where: str) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return  # created by the master, as its user
    if st.st_uid not in trusted:
        raise UnsafePath(f"{where}: the directory above it {path!r} is owned by {_who(st.st_uid)}, not by "
                         f"{_owners(trusted)}: that user could replace the sock_dir")
    if stat.S_ISLNK(st.st_mode):
        return  # a link owned by a trusted user in a checked directory; its target is checked as the real path
    if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
        raise UnsafePath(f"{where}: the directory above it {path!r} is writable by group or others and not sticky "
                         f"(mode {stat.S_IMODE(st.st_mode):04o}): others could replace the sock_dir; "
                         "choose a sock_dir under a directory only root or the master's user can write")
