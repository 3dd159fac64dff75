"""What users who are not root send: the credentials a local-socket request carries (`auth` in its load),
login and logout, and the user socket's framing (a 4-byte length, then one msgpack document).

On the master's local socket (root key required) a request may carry `auth`: a token narrows it to that
token's user and rights; the user socket's relay (rx.master.usergate) also sets `peer_user`/`peer_uid`,
the kernel's word for who connected (SO_PEERCRED), and whatever a client put there is overwritten.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from typing import Any

from rx.transport import fields as f
from rx.transport.errors import ProtocolError

LOGIN = "login"
LOGOUT = "logout"
USER_COMMANDS = ("publish", "preview", "lookup", LOGIN, LOGOUT)
"""What the user socket takes (anything else is refused unread)."""
MAX_USER_REQUEST = 4 * 1024 * 1024
"""Largest request a user may send through the user socket."""
MAX_USER_OBJECTS = 100_000
TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{32,128}")
"""A token as rx makes them (secrets.token_urlsafe); anything else is refused before any lookup."""
MAX_USERNAME = 256
MAX_PASSWORD = 4096
EAUTH_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")
LENGTH = struct.Struct(">I")


def _text(d: dict, key: str, most: int, default: Any = ...) -> str:
    value = f.get(d, key, str, default=default)
    if len(value) > most or "\0" in value:
        raise ProtocolError(f"at most {most} characters, no NUL", key)
    return value


def token_field(d: dict, key: str = "token", default: Any = ...) -> str:
    value = f.get(d, key, str, default=default)
    if value and not TOKEN_RE.fullmatch(value):
        raise ProtocolError("not a token", key)
    return value


@dataclass(frozen=True)
class Credentials:
    """Who a local-socket request is for: a token's user, else the local user the user socket saw
    (`peer_user`), else (neither) the holder of the root key.  `source` is where the request came from
    (the API's client address, `uid:N` on the user socket), for the audit log and login limits."""

    token: str = ""
    peer_user: str = ""
    peer_uid: int = -1
    source: str = ""

    def __bool__(self) -> bool:
        return bool(self.token or self.peer_user)

    def to_wire(self) -> dict:
        out: dict[str, Any] = {}
        if self.token:
            out["token"] = self.token
        if self.peer_user:
            out["peer_user"], out["peer_uid"] = self.peer_user, self.peer_uid
        if self.source:
            out["source"] = self.source
        return out

    @classmethod
    def from_wire(cls, obj: Any) -> "Credentials":
        d = f.as_map(obj, "auth")
        peer = _text(d, "peer_user", MAX_USERNAME, default="")
        return cls(token=token_field(d, default=""), peer_user=peer,
                   peer_uid=f.integer(d, "peer_uid", 0, 2**32 - 1) if peer else -1,
                   source=_text(d, "source", 256, default=""))


def credentials_of(load: dict) -> Credentials:
    """The `auth` of a request's load (none: the root key's holder); ProtocolError if malformed."""
    raw = load.get("auth")
    return Credentials() if raw is None else Credentials.from_wire(raw)


@dataclass(frozen=True)
class LoginRequest:
    eauth: str
    username: str
    password: str = field(repr=False)

    def to_wire(self) -> dict:
        return {"eauth": self.eauth, "username": self.username, "password": self.password}

    @classmethod
    def from_wire(cls, obj: Any) -> "LoginRequest":
        d = f.as_map(obj, "login")
        eauth = f.get(d, "eauth", str)
        if not EAUTH_RE.fullmatch(eauth):
            raise ProtocolError("not a back-end name", "eauth")
        username = _text(d, "username", MAX_USERNAME)
        if not username:
            raise ProtocolError("empty", "username")
        return cls(eauth, username, _text(d, "password", MAX_PASSWORD))


@dataclass(frozen=True)
class Token:
    """A login's token with salt-api's login fields (`to_salt`); the login reply on the wire."""

    token: str = field(repr=False)
    expire: float
    start: float
    user: str
    eauth: str
    perms: list = field(default_factory=list)

    def to_salt(self) -> dict:
        return {"token": self.token, "expire": self.expire, "start": self.start, "user": self.user,
                "eauth": self.eauth, "perms": self.perms}

    def to_wire(self) -> dict:
        return {"ok": True, **self.to_salt()}

    @classmethod
    def from_wire(cls, obj: Any) -> "Token":
        d = f.as_map(obj, "reply")
        if d.get("ok") is not True:
            raise ProtocolError("must be true", "ok")
        return cls(token=token_field(d), expire=f.number(d, "expire"), start=f.number(d, "start"),
                   user=_text(d, "user", MAX_USERNAME), eauth=_text(d, "eauth", 32),
                   perms=f.get(d, "perms", list, default=[]))


@dataclass(frozen=True)
class LogoutRequest:
    token: str

    def to_wire(self) -> dict:
        return {"token": self.token}

    @classmethod
    def from_wire(cls, obj: Any) -> "LogoutRequest":
        return cls(token_field(f.as_map(obj, "logout")))


@dataclass(frozen=True)
class UserRequest:
    """One request on the user socket: a command of USER_COMMANDS, its load and the caller's token."""

    cmd: str
    load: dict
    token: str = ""

    def to_wire(self) -> dict:
        out = {"cmd": self.cmd, "load": self.load}
        if self.token:
            out["token"] = self.token
        return out

    @classmethod
    def from_wire(cls, obj: Any) -> "UserRequest":
        d = f.as_map(obj, "request")
        cmd = f.get(d, "cmd", str)
        if cmd not in USER_COMMANDS:
            raise ProtocolError("unknown command", "cmd")
        return cls(cmd, f.as_map(f.get(d, "load", dict), "load"), token_field(d, default=""))


def frame(body: bytes) -> bytes:
    """A user-socket frame: the length (4 bytes, big-endian), then the body."""
    return LENGTH.pack(len(body)) + body


def frame_length(head: bytes, most: int) -> int:
    """The body length a frame header announces; ProtocolError past `most`."""
    (n,) = LENGTH.unpack(head)
    if n > most:
        raise ProtocolError(f"{n}-byte frame: at most {most}", "frame")
    return n
