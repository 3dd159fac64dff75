"""Wire messages: small frozen values, each with one to_wire/from_wire pair.

`from_wire` takes the decoded msgpack object and either returns a typed message
or raises `ProtocolError` naming the field that is wrong.  No message carries
anything that gets looked up by name later without an allow-list.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from typing import Any

from rx.transport.codec import encode
from rx.transport.ids import FUN_RE, JID_RE, TARGET_TYPES, validate_minion_id
from rx.transport.sizes import NONCE_BYTES, PUBLIC_KEY_BYTES, SIGNATURE_BYTES

MAX_TARGET_LEN = 64 * 1024
MAX_FUNS = 64
MAX_SERIAL = 2**64 - 1


class ProtocolError(ValueError):
    """A decoded message whose shape or values are not what the protocol allows."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


def serial_bytes(serial: int) -> bytes:
    return struct.pack(">Q", serial)


def _map(obj: Any, what: str) -> dict:
    if not isinstance(obj, dict):
        raise ProtocolError(f"{what} must be a map, got {type(obj).__name__}")
    return obj


def _get(d: dict, key: str, types: type | tuple[type, ...], *, default: Any = ..., size: int | None = None) -> Any:
    if key not in d:
        if default is ...:
            raise ProtocolError("missing", key)
        return default
    value = d[key]
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,))):
        raise ProtocolError(f"wrong type {type(value).__name__}", key)
    if size is not None and len(value) != size:
        raise ProtocolError(f"must be {size} bytes", key)
    return value


def _serial(d: dict, key: str = "serial") -> int:
    value = _get(d, key, int)
    if not 0 <= value <= MAX_SERIAL:
        raise ProtocolError(f"must be 0-{MAX_SERIAL}", key)
    return value


def _minion_id(d: dict, key: str = "id") -> str:
    value = _get(d, key, str)
    why = validate_minion_id(value)
    if why:
        raise ProtocolError(f"minion id {why}", key)
    return value


def _delimiter(d: dict) -> str:
    value = _get(d, "delimiter", str, default=":")
    if not 1 <= len(value) <= 8:
        raise ProtocolError("must be 1-8 characters", "delimiter")
    return value


def check_jid(value: Any, key: str = "jid") -> str:
    if not isinstance(value, str) or not JID_RE.match(value):
        raise ProtocolError("must be a 20-digit job id", key)
    return value


# ---------------------------------------------------------------- request channel envelopes

@dataclass(frozen=True)
class ClearRequest:
    """An unauthenticated request: only `_auth` and `publish` are dispatched."""

    cmd: str
    load: dict

    def to_wire(self) -> dict:
        return {"enc": "clear", "cmd": self.cmd, "load": self.load}


@dataclass(frozen=True)
class AesRequest:
    """A request from an authenticated minion, sealed with its per-minion key."""

    id: str
    serial: int
    nonce: bytes
    ct: bytes

    def to_wire(self) -> dict:
        return {"enc": "aes", "id": self.id, "serial": self.serial, "nonce": self.nonce, "ct": self.ct}


def parse_request(obj: Any) -> ClearRequest | AesRequest:
    d = _map(obj, "request")
    enc = _get(d, "enc", str)
    if enc == "clear":
        return ClearRequest(cmd=_get(d, "cmd", str), load=_map(_get(d, "load", dict), "load"))
    if enc == "aes":
        return AesRequest(id=_minion_id(d), serial=_serial(d), nonce=_get(d, "nonce", bytes, size=NONCE_BYTES),
                          ct=_get(d, "ct", bytes))
    raise ProtocolError(f"unknown encoding {enc!r}", "enc")


def request_aad(minion_id: str, serial: int, direction: bytes = b"req") -> bytes:
    return b"rx/" + direction + b"\0" + serial_bytes(serial) + minion_id.encode()


@dataclass(frozen=True)
class SecureCommand:
    """The plaintext inside an AesRequest."""

    cmd: str
    ts: float
    load: dict

    def to_wire(self) -> dict:
        return {"cmd": self.cmd, "ts": self.ts, "load": self.load}

    @classmethod
    def from_wire(cls, obj: Any) -> "SecureCommand":
        d = _map(obj, "command")
        return cls(cmd=_get(d, "cmd", str), ts=float(_get(d, "ts", (int, float))), load=_get(d, "load", dict))


# ---------------------------------------------------------------- replies

@dataclass(frozen=True)
class ErrorInfo:
    """A typed error carried in a reply: `type` is machine-readable, `message` for people."""

    type: str
    message: str

    def to_wire(self) -> dict:
        return {"ok": False, "error": {"type": self.type, "message": self.message}}


def parse_reply(obj: Any) -> dict:
    """Return the reply map; an error reply becomes a ReplyError."""
    d = _map(obj, "reply")
    if d.get("ok") is True:
        return d
    err = d.get("error")
    if isinstance(err, dict) and isinstance(err.get("type"), str) and isinstance(err.get("message"), str):
        raise ReplyError(err["type"], err["message"])
    raise ProtocolError("reply is neither ok nor a well-formed error")


class ReplyError(Exception):
    """The master answered with an error."""

    def __init__(self, type: str, message: str) -> None:
        super().__init__(f"{type}: {message}")
        self.type = type
        self.message = message


# ---------------------------------------------------------------- auth

AUTH_STATUSES = ("accepted", "pending", "rejected", "denied")


@dataclass(frozen=True)
class AuthRequest:
    id: str
    pub: bytes
    eph: bytes
    ts: float
    nonce: bytes
    sig: bytes

    def signed_bytes(self) -> bytes:
        return b"rx/auth\0" + encode([self.id, self.pub, self.eph, self.ts, self.nonce])

    def to_wire(self) -> dict:
        return {"id": self.id, "pub": self.pub, "eph": self.eph, "ts": self.ts, "nonce": self.nonce, "sig": self.sig}

    @classmethod
    def from_wire(cls, obj: Any) -> "AuthRequest":
        d = _map(obj, "auth")
        return cls(id=_minion_id(d), pub=_get(d, "pub", bytes, size=PUBLIC_KEY_BYTES),
                   eph=_get(d, "eph", bytes, size=PUBLIC_KEY_BYTES), ts=float(_get(d, "ts", (int, float))),
                   nonce=_get(d, "nonce", bytes, size=16), sig=_get(d, "sig", bytes, size=SIGNATURE_BYTES))


@dataclass(frozen=True)
class AuthReply:
    """The master's signed answer; `body` is the signed msgpack bytes of AuthBody."""

    master_pub: bytes
    body: bytes
    sig: bytes

    def to_wire(self) -> dict:
        return {"ok": True, "master_pub": self.master_pub, "body": self.body, "sig": self.sig}

    @classmethod
    def from_wire(cls, obj: Any) -> "AuthReply":
        d = _map(obj, "auth reply")
        return cls(master_pub=_get(d, "master_pub", bytes, size=PUBLIC_KEY_BYTES), body=_get(d, "body", bytes),
                   sig=_get(d, "sig", bytes, size=SIGNATURE_BYTES))


@dataclass(frozen=True)
class AuthBody:
    status: str
    id: str
    nonce: bytes
    serial: int = 0
    now: float = 0.0
    eph: bytes = b""
    keys_nonce: bytes = b""
    keys_ct: bytes = b""

    def to_wire(self) -> dict:
        return {"status": self.status, "id": self.id, "nonce": self.nonce, "serial": self.serial,
                "now": self.now, "eph": self.eph, "keys_nonce": self.keys_nonce, "keys_ct": self.keys_ct}

    @classmethod
    def from_wire(cls, obj: Any) -> "AuthBody":
        d = _map(obj, "auth body")
        status = _get(d, "status", str)
        if status not in AUTH_STATUSES:
            raise ProtocolError(f"unknown status {status!r}", "status")
        return cls(status=status, id=_get(d, "id", str), nonce=_get(d, "nonce", bytes), serial=_serial(d),
                   now=float(_get(d, "now", (int, float))), eph=_get(d, "eph", bytes), keys_nonce=_get(d, "keys_nonce", bytes), keys_ct=_get(d, "keys_ct", bytes))


# ---------------------------------------------------------------- publish (client -> master)

@dataclass(frozen=True)
class PublishRequest:
    """A job as a client asks for it. `fun` is one name or a list (multi-function job)."""

    key: str
    tgt: str | list
    fun: str | list
    arg: list = field(default_factory=list)
    kwarg: dict = field(default_factory=dict)
    tgt_type: str = "glob"
    jid: str = ""
    user: str = ""
    timeout: float = 0.0
    delimiter: str = ":"

    def to_wire(self) -> dict:
        return {"key": self.key, "tgt": self.tgt, "fun": self.fun, "arg": self.arg, "kwarg": self.kwarg,
                "tgt_type": self.tgt_type, "jid": self.jid, "user": self.user, "timeout": self.timeout,
                "delimiter": self.delimiter}

    @classmethod
    def from_wire(cls, obj: Any) -> "PublishRequest":
        d = _map(obj, "publish")
        tgt = _get(d, "tgt", (str, list))
        if isinstance(tgt, str) and len(tgt) > MAX_TARGET_LEN:
            raise ProtocolError("target too long", "tgt")
        if isinstance(tgt, list) and not all(isinstance(t, str) for t in tgt):
            raise ProtocolError("target list must hold strings", "tgt")
        fun = _get(d, "fun", (str, list))
        funs = [fun] if isinstance(fun, str) else fun
        if not funs or len(funs) > MAX_FUNS or not all(isinstance(f, str) and FUN_RE.match(f) for f in funs):
            raise ProtocolError("must be 'module.function' (or a list of them)", "fun")
        tgt_type = _get(d, "tgt_type", str, default="glob")
        if tgt_type not in TARGET_TYPES:
            raise ProtocolError(f"unknown target type {tgt_type!r}", "tgt_type")
        jid = _get(d, "jid", str, default="")
        if jid:
            check_jid(jid)
        arg = _get(d, "arg", list, default=[])
        if isinstance(fun, list) and (len(arg) != len(funs) or not all(isinstance(a, list) for a in arg)):
            raise ProtocolError("a multi-function job needs one argument list per function", "arg")
        return cls(key=_get(d, "key", str), tgt=tgt, fun=fun, arg=arg, kwarg=_get(d, "kwarg", dict, default={}),
                   tgt_type=tgt_type, jid=jid, user=_get(d, "user", str, default=""),
                   timeout=float(_get(d, "timeout", (int, float), default=0.0)),
                   delimiter=_delimiter(d))


# ---------------------------------------------------------------- publications (master -> minions)

@dataclass(frozen=True)
class Publication:
    """What travels on the PUB socket: the sealed job plus the master's signature over it."""

    serial: int
    nonce: bytes
    ct: bytes
    sig: bytes

    def signed_bytes(self) -> bytes:
        return publication_signed_bytes(self.serial, self.nonce, self.ct)

    def to_wire(self) -> dict:
        return {"serial": self.serial, "nonce": self.nonce, "ct": self.ct, "sig": self.sig}

    @classmethod
    def from_wire(cls, obj: Any) -> "Publication":
        d = _map(obj, "publication")
        return cls(serial=_serial(d), nonce=_get(d, "nonce", bytes, size=NONCE_BYTES),
                   ct=_get(d, "ct", bytes), sig=_get(d, "sig", bytes, size=SIGNATURE_BYTES))


def publication_signed_bytes(serial: int, nonce: bytes, ct: bytes) -> bytes:
    return b"rx/pub\0" + serial_bytes(serial) + nonce + ct


def publication_aad(serial: int) -> bytes:
    return b"rx/pub\0" + serial_bytes(serial)


@dataclass(frozen=True)
class Job:
    """The decrypted job a minion runs (the plaintext of a Publication)."""

    jid: str
    fun: str | list
    arg: list
    kwarg: dict
    tgt: str | list
    tgt_type: str
    ts: float
    user: str = ""
    delimiter: str = ":"

    def to_wire(self) -> dict:
        return {"jid": self.jid, "fun": self.fun, "arg": self.arg, "kwarg": self.kwarg, "tgt": self.tgt,
                "tgt_type": self.tgt_type, "ts": self.ts, "user": self.user, "delimiter": self.delimiter}

    @classmethod
    def from_wire(cls, obj: Any) -> "Job":
        d = _map(obj, "job")
        return cls(jid=check_jid(d.get("jid")), fun=_get(d, "fun", (str, list)), arg=_get(d, "arg", list),
                   kwarg=_get(d, "kwarg", dict), tgt=_get(d, "tgt", (str, list)), tgt_type=_get(d, "tgt_type", str),
                   ts=float(_get(d, "ts", (int, float))), user=_get(d, "user", str, default=""),
                   delimiter=_delimiter(d))


# ---------------------------------------------------------------- returns (minion -> master)

@dataclass(frozen=True)
class JobReturn:
    jid: str
    fun: str | list
    fun_args: list
    retcode: int
    success: bool
    ret: Any

    def to_wire(self) -> dict:
        return {"jid": self.jid, "fun": self.fun, "fun_args": self.fun_args, "retcode": self.retcode,
                "success": self.success, "return": self.ret}

    @classmethod
    def from_wire(cls, obj: Any) -> "JobReturn":
        d = _map(obj, "return")
        if "return" not in d:
            raise ProtocolError("missing", "return")
        return cls(jid=check_jid(d.get("jid")), fun=_get(d, "fun", (str, list)), fun_args=_get(d, "fun_args", list),
                   retcode=_get(d, "retcode", int), success=_get(d, "success", bool), ret=d["return"])


@dataclass(frozen=True)
class MinionEvent:
    """An event a minion fires; the master files it under rx/minion/<authenticated id>/<tag>."""

    tag: str
    data: dict

    def to_wire(self) -> dict:
        return {"tag": self.tag, "data": self.data}

    @classmethod
    def from_wire(cls, obj: Any) -> "MinionEvent":
        d = _map(obj, "event")
        tag = _get(d, "tag", str)
        if not tag or len(tag) > 512 or not tag.isprintable() or tag.startswith("/") or ".." in tag.split("/"):
            raise ProtocolError("event tag must be 1-512 printable characters, relative, without '..'", "tag")
        return cls(tag=tag, data=_get(d, "data", dict))
