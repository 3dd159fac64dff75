"""External authentication back ends: who a user is (the ACL in rx.acl says what they may do).

Built in: `pam` (rx.master.auth.pam: python-pam, imported only when used; the process that takes
logins must be root or able to read /etc/shadow) and `file` (rx.master.auth.passwords: salted scrypt
hashes, never plaintext).  Others come from the `rx.auth` entry-point group: an entry point named as
the back end (`ldap = mypkg.rxauth:Backend`) gives a factory called with the back end's `^options`
from `external_auth` (declare them in its `options` attribute, a set of names) that returns an object
with `authenticate(username, password) -> bool` and, optionally, `groups(username) -> list[str]` (the
groups `group%` entries test).  Both may block: the auth service runs them in a thread.
"""

from __future__ import annotations

import grp
import os
import pwd
from typing import Any, Mapping, Protocol, Sequence

__all__ = ["Backend", "load_backend", "os_groups"]


class Backend(Protocol):
    def authenticate(self, username: str, password: str) -> bool: ...

    def groups(self, username: str) -> Sequence[str]: ...


def os_groups(username: str) -> list[str]:
    """The OS groups of a local user (primary and supplementary), [] for an unknown user."""
    try:
        entry = pwd.getpwnam(username)
    except KeyError:
        return []
    names = []
    for gid in os.getgrouplist(username, entry.pw_gid):
        try:
            names.append(grp.getgrgid(gid).gr_name)
        except KeyError:
            continue
    return sorted(set(names))


def load_backend(name: str, options: Mapping[str, Any]) -> Backend:
    """The back end `name` (built in, else its `rx.auth` entry point) set up with its options; LookupError if
    there is none (the config check refuses unknown names first)."""
    if name == "pam":
        from rx.master.auth.pam import PamBackend
        return PamBackend()
    if name == "file":
        from rx.master.auth.passwords import FileBackend
        return FileBackend(str(options.get("filename", "")))
    from importlib.metadata import entry_points
    found = list(entry_points(group="rx.auth", name=name))
    if not found:
        raise LookupError(f"no eauth back end {name!r}")
    return found[0].load()(dict(options))
