"""The master's settings for users who are not root: `external_auth`, `publisher_acl`, tokens, the
user socket, the audit log and login rate limiting.  Declared here (a mixin of MasterConfig) to keep
config.py small; docs/config.md lists them in their own section.  `check_auth` parses both ACL tables
at load (rx.acl), so a table rx cannot read stops the master with exit 2 before anything starts."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from rx.configspec import DIR, FILE, SECONDS, ConfigError, Rule, one_of, setting

BUILTIN_EAUTH = {"pam": frozenset(), "file": frozenset({"filename"})}
"""The back ends rx ships and the `^options` each takes; others come from `rx.auth` entry points."""
EAUTH_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
USER_SOCKET = "master_users.sock"
"""The socket in `user_sock_dir` through which users who are not root reach the master."""
SOCKET_PATH_MAX = 107
"""AF_UNIX's limit (rx.config.AF_UNIX_PATH_MAX)."""


@dataclass(frozen=True)
class AuthSettings:
    """Users who are not root (see README, Users and rights)."""

    external_auth: Mapping[str, Any] = setting(
        rule=Rule("a mapping of back end (pam, file, or an rx.auth entry point) to a mapping of user / group% to "
                  "rights"), factory=dict,
        doc="Salt's external_auth: who may log in through which back end (`pam`, `file`, or an `rx.auth` entry "
            "point) and what each user (exact, glob or regex; `group%`: an OS group; `*`: anyone not named) may "
            "run: function patterns, `target: [functions]`, `@runner`, `@wheel`, `@<module>`. Checked at start")
    publisher_acl: Mapping[str, Any] = setting(
        rule=Rule("a mapping of local user / group% to rights"), factory=dict,
        doc="Salt's publisher_acl: what local users of the master host may run with `rx` without a password "
            "(identified by the kernel through the user socket); same rights format as external_auth")
    token_expire: float = setting(43200.0, rule=SECONDS,
                                  doc="seconds an eauth token (`rx -T`, rx-api's /login) is valid (Salt's default, "
                                      "12 h)")
    token_dir: str = setting("", rule=DIR, under_root="var/cache/rx/{role}/tokens",
                             doc="where the `files` token store keeps tokens (0700; a file per token, named by its "
                                 "hash) and the failed-login counts")
    token_store_backend: str = setting("files", rule=one_of("files"), doc="where tokens are kept")
    user_sock_dir: str = setting(
        "", rule=DIR, under_root="var/run/rx/{role}-users",
        doc=f"where the master listens for local users who are not root (`{USER_SOCKET}`, 0666 in a 0755 "
            "directory) when external_auth or publisher_acl is set; nothing listens otherwise")
    audit_log_file: str = setting("", rule=FILE, under_root="var/log/rx/audit",
                                  doc="one JSON line per request (who, action, target, function, outcome): "
                                      "publishes, previews, lookups, logins and logouts, root's included")
    auth_failures_max: int = setting(
        5, rule=Rule("a whole number >= 1", lambda v: v >= 1),
        doc="this many failed logins within a minute, for one user or from one source, lock that user or "
            "source out for `auth_lockout_seconds`")
    auth_lockout_seconds: float = setting(300.0, rule=SECONDS, doc="how long a lockout lasts")

    @property
    def user_socket(self) -> str:
        return str(Path(self.user_sock_dir) / USER_SOCKET)

    @property
    def users_enabled(self) -> bool:
        """Whether anyone but root may use the master (and so whether the user socket is served)."""
        return bool(self.external_auth or self.publisher_acl)


def check_auth(path: Path, values: dict[str, Any]) -> None:
    """ConfigError (exit 2) for an ACL table rx cannot read, an unknown back end or a missing option."""
    from rx.acl import AclError, parse_table
    nodegroups = values.get("nodegroups") or {}
    try:
        parse_table(values.get("publisher_acl") or {}, "publisher_acl", nodegroups)
        for eauth, table in (values.get("external_auth") or {}).items():
            if not isinstance(eauth, str) or not EAUTH_NAME.fullmatch(eauth):
                raise AclError(f"external_auth: {eauth!r} is not a back-end name (lower-case letters, digits, _)")
            parsed = parse_table(table, f"external_auth: {eauth}", nodegroups, _options(eauth))
            if eauth == "file" and not (parsed.options or {}).get("filename"):
                raise AclError("external_auth: file: needs ^filename (the password file; see README, Users "
                               "and rights)")
    except AclError as exc:
        key = "publisher_acl" if str(exc).startswith("publisher_acl") else "external_auth"
        raise ConfigError(f"{path}: {exc}", path=str(path), key=key) from None
    sock = os.path.join(values["user_sock_dir"], USER_SOCKET)
    if (values.get("external_auth") or values.get("publisher_acl")) and len(os.fsencode(sock)) > SOCKET_PATH_MAX:
        raise ConfigError(f"{path}: user_sock_dir: {sock!r} is {len(os.fsencode(sock))} bytes long; the limit is "
                          f"{SOCKET_PATH_MAX}: choose a shorter user_sock_dir", path=str(path), key="user_sock_dir")
    ext = values.get("external_auth") or {}
    if ext.get("file", {}).get("^filename"):  # relative: under root_dir, as every path
        values["external_auth"] = {**ext, "file": {**ext["file"], "^filename": os.path.join(
            values.get("root_dir", "/"), ext["file"]["^filename"])}}

def _options(eauth: str) -> frozenset[str]:
    """The `^options` a back end takes; AclError for a back end neither built in nor installed."""
    if eauth in BUILTIN_EAUTH:
        return BUILTIN_EAUTH[eauth]
    from importlib.metadata import entry_points

    from rx.acl import AclError
    found = entry_points(group="rx.auth", name=eauth)
    if not found:
        installed = sorted({*BUILTIN_EAUTH, *(ep.name for ep in entry_points(group="rx.auth"))})
        raise AclError(f"external_auth: unknown back end {eauth!r} (available: {', '.join(installed)})")
    return frozenset(getattr(next(iter(found)).load(), "options", frozenset()))
