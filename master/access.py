"""Who a local-socket request is for, and the audit line of each one (publish, preview, lookup).

Every such request carries the root key (the local socket is reachable only by root and the master's
user); its `auth` (rx.transport.usermsgs.Credentials) may narrow it to a user: a token (checked in the
token store), else the local user the user socket's relay saw (`peer_user`, publisher_acl).  Without
`auth` it is the root key's holder, who has every right.  The rights themselves are decided by
`AuthService.authorize_publish` (rx.master.services.auth), which rx.master.publish calls for every job.
"""

from __future__ import annotations

from typing import Any

from rx.master.services.auth import ROOT, AuthError, AuthService, Principal
from rx.transport.errors import ErrorKind, ProtocolError
from rx.transport.replies import ErrorReply
from rx.transport.usermsgs import credentials_of


class Refused(Exception):
    """A request refused before it is parsed further; `reply` is the error answer."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.reply = ErrorReply(kind, message).to_wire()


async def principal_of(auth: AuthService, load: dict, action: str) -> Principal:
    """The principal of a request whose root key was checked; Refused (a permission error) for a bad token,
    a local user publisher_acl does not list, or malformed credentials."""
    try:
        creds = credentials_of(load)
    except ProtocolError as exc:
        raise Refused(ErrorKind.BAD_REQUEST, f"malformed credentials: {exc}") from None
    if not creds:
        return ROOT
    try:
        if creds.token:
            return await auth.check_token(creds.token, source=creds.source or _uid(creds.peer_uid))
        return auth.local_user(creds.peer_user, source=creds.source or _uid(creds.peer_uid))
    except AuthError as exc:
        who = Principal(creds.peer_user or "?", "token" if creds.token else "publisher_acl", (),
                        creds.source or _uid(creds.peer_uid))
        record(auth, who, action, "refused", load, reason=str(exc))
        raise Refused(ErrorKind.PERMISSION, str(exc)) from None


def _uid(uid: int) -> str:
    return f"uid:{uid}" if uid >= 0 else ""


def record(auth: AuthService, who: Principal, action: str, outcome: str, load: dict | None = None,
           **fields: Any) -> None:
    """The audit line of a publish, preview or lookup (`load`: the request, for its target and function)."""
    if load is not None:
        fields = {"target": load.get("tgt") if isinstance(load.get("tgt"), (str, list)) else None,
                  "tgt_type": load.get("tgt_type") if isinstance(load.get("tgt_type"), str) else None,
                  "fun": load.get("fun") if isinstance(load.get("fun"), (str, list)) else None, **fields}
    if who.root and isinstance(load, dict) and isinstance(load.get("user"), str) and load["user"]:
        who = Principal(load["user"][:64], "", (), who.source)
    auth.audit(who, action, outcome, **fields)
