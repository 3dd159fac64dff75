"""Wire messages of the request and publish channels: small frozen values, each with one
to_wire/from_wire pair.

`from_wire` takes the decoded msgpack object and either returns a typed message or raises
`ProtocolError` naming the field that is wrong.  Numbers are range-checked here, at parse
time.  No message carries anything that gets looked up by name later without an allow-list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rx.transport import fields as f
from rx.transport.errors import ProtocolError
from rx.transport.fields import check_jid, serial_bytes
from rx.transport.ids import FUN_RE, MINION_ID_MAX, TARGET_TYPES
from rx.transport.sizes import JOB_WINDOW, NONCE_BYTES, SIGNATURE_BYTES

MAX_TARGET_LEN = 64 * 1024
MAX_TARGET_ITEMS = 100_000
MAX_FUNS = 64
MAX_RETCODE = 2**31 - 1
MAX_TIMEOUT = 10 * 365 * 86400.0

# command names (the master dispatches them through explicit tables)
AUTH = "_auth"
PUBLISH = "publish"
PREVIEW = "preview"
LOOKUP = "lookup"
RETURN = "_return"
MINION_EVENT = "_minion_event"
MISSED = "_missed"

__all__ = ["ProtocolError", "check_jid", "serial_bytes"]


# ---------------------------------------------------------------- request channel envelopes

@dataclass(frozen=True)
class ClearRequest:
    """An unauthenticated request: `_auth` from the network; `publish`, `preview` and `lookup` from the local
    socket."""

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
    d = f.as_map(obj, "request")
    enc = f.get(d, "enc", str)
    if enc == "clear":
        return ClearRequest(cmd=f.get(d, "cmd", str), load=f.as_map(f.get(d, "load", dict), "load"))
    if enc == "aes":
        return AesRequest(id=f.minion_id(d), serial=f.serial(d), nonce=f.get(d, "nonce", bytes, size=NONCE_BYTES),
                          ct=f.get(d, "ct", bytes))
    raise ProtocolError(f"unknown encoding {enc!r}", "enc")


def looks_sealed(frame: bytes) -> bool:
    """True if `frame` starts as an encoded AesRequest does: a map whose first field is `enc: "aes"`
    (the master serves such frames before clear ones, and refuses a clear request that starts so)."""
    return len(frame) > 9 and 0x80 <= frame[0] <= 0x8F and frame[1:9] == b"\xa3enc\xa3aes"


def request_aad(minion_id: str, serial: int) -> bytes:
    """Associated data of a sealed request: the id and key serial it claims are what the key proves."""
    return b"rx/req\0" + serial_bytes(serial) + minion_id.encode()


def reply_aad(minion_id: str, serial: int, request_nonce: bytes) -> bytes:
    """Associated data of a sealed reply: bound to the request it answers (its nonce), so a captured
    reply cannot be replayed as the answer to another request."""
    return b"rx/rep\0" + serial_bytes(serial) + request_nonce + minion_id.encode()


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
        d = f.as_map(obj, "command")
        return cls(cmd=f.get(d, "cmd", str), ts=f.number(d, "ts"), load=f.get(d, "load", dict))


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
    private: bool = False
    """seal the job for each expected minion, whatever their number (see `private_publish_max`)"""
    job_expire: float = 0.0
    """seconds after publication from which minions refuse the job (at most JOB_WINDOW; 0: JOB_WINDOW)"""

    def to_wire(self) -> dict:
        return {"key": self.key, "tgt": self.tgt, "fun": self.fun, "arg": self.arg, "kwarg": self.kwarg,
                "tgt_type": self.tgt_type, "jid": self.jid, "user": self.user, "timeout": self.timeout,
                "delimiter": self.delimiter, "private": self.private, "job_expire": self.job_expire}

    @classmethod
    def from_wire(cls, obj: Any) -> "PublishRequest":
        d = f.as_map(obj, "publish")
        tgt = _target(d)
        fun = _funs(d)
        tgt_type = _target_type(d, default="glob")
        jid = f.get(d, "jid", str, default="")
        if jid:
            check_jid(jid)
        arg = _args(d, fun, default=[])
        return cls(key=f.get(d, "key", str), tgt=tgt, fun=fun, arg=arg, kwarg=_kwarg(d, default={}),
                   tgt_type=tgt_type, jid=jid, user=f.get(d, "user", str, default=""),
                   timeout=f.number(d, "timeout", high=MAX_TIMEOUT, default=0.0),
                   delimiter=f.delimiter(d), private=f.get(d, "private", bool, default=False),
                   job_expire=f.number(d, "job_expire", high=MAX_TIMEOUT, default=0.0))

    def expiry(self, ts: float) -> float:
        """The expiry of the job this request publishes at `ts` (master clock): `job_expire` seconds later,
        capped by the freshness window; 0 (none but the window) when `job_expire` is 0."""
        return ts + min(self.job_expire, JOB_WINDOW) if self.job_expire else 0.0


def _target(d: dict) -> str | list:
    """A target expression, or a bounded list of id-sized strings (a list item is hashed when matching)."""
    tgt = f.get(d, "tgt", (str, list))
    if isinstance(tgt, str) and len(tgt) > MAX_TARGET_LEN:
        raise ProtocolError("target too long", "tgt")
    if isinstance(tgt, list) and (len(tgt) > MAX_TARGET_ITEMS or not all(
            isinstance(t, str) and len(t) <= MINION_ID_MAX for t in tgt)):
        raise ProtocolError(f"a target list must hold at most {MAX_TARGET_ITEMS} strings of at most "
                            f"{MINION_ID_MAX} characters", "tgt")
    return tgt


def _target_type(d: dict, default: Any = ...) -> str:
    tgt_type = f.get(d, "tgt_type", str, default=default)
    if tgt_type not in TARGET_TYPES:
        raise ProtocolError(f"unknown target type {tgt_type!r}", "tgt_type")
    return tgt_type


def _kwarg(d: dict, default: Any = ...) -> dict:
    kwarg = f.get(d, "kwarg", dict, default=default)
    if not all(isinstance(k, str) for k in kwarg):
        raise ProtocolError("keyword argument names must be strings", "kwarg")
    return kwarg


def _funs(d: dict) -> str | list:
    fun = f.get(d, "fun", (str, list))
    funs = [fun] if isinstance(fun, str) else fun
    if not funs or len(funs) > MAX_FUNS or not all(isinstance(name, str) and FUN_RE.match(name) for name in funs):
        raise ProtocolError("must be 'module.function' (or a list of at most 64 of them)", "fun")
    return fun


def _args(d: dict, fun: str | list, default: Any = ...) -> list:
    arg = f.get(d, "arg", list, default=default)
    if isinstance(fun, list) and (len(arg) != len(fun) or not all(isinstance(a, list) for a in arg)):
        raise ProtocolError("a multi-function job needs one argument list per function", "arg")
    return arg


@dataclass(frozen=True)
class LookupRequest:
    """A client asks for a job's stored returns: of the minions in `ids`, or of every minion (None)."""

    key: str
    jid: str
    ids: list[str] | None = None

    def to_wire(self) -> dict:
        out: dict[str, Any] = {"key": self.key, "jid": self.jid}
        if self.ids is not None:
            out["ids"] = self.ids
        return out

    @classmethod
    def from_wire(cls, obj: Any) -> "LookupRequest":
        d = f.as_map(obj, "lookup")
        ids = f.str_list(d, "ids", ids=True) if "ids" in d else None
        return cls(key=f.get(d, "key", str), jid=check_jid(d.get("jid")), ids=ids)


@dataclass(frozen=True)
class MissedRequest:
    """A reconnecting minion asks for the jobs published to it since `since` (master clock)."""

    since: float

    def to_wire(self) -> dict:
        return {"since": self.since}

    @classmethod
    def from_wire(cls, obj: Any) -> "MissedRequest":
        return cls(since=f.number(f.as_map(obj, "missed"), "since"))


# ---------------------------------------------------------------- publications (master -> minions)

@dataclass(frozen=True)
class Publication:
    """What travels on the PUB socket: the sealed job plus the master's signature over it.  A private
    publication names its one recipient (`to`), bound into the signature and the sealing."""

    serial: int
    nonce: bytes
    ct: bytes
    sig: bytes
    to: str = ""

    def signed_bytes(self) -> bytes:
        return publication_signed_bytes(self.serial, self.nonce, self.ct, self.to)

    def to_wire(self) -> dict:
        wire = {"serial": self.serial, "nonce": self.nonce, "ct": self.ct, "sig": self.sig}
        return {**wire, "to": self.to} if self.to else wire

    @classmethod
    def from_wire(cls, obj: Any) -> "Publication":
        d = f.as_map(obj, "publication")
        return cls(serial=f.serial(d), nonce=f.get(d, "nonce", bytes, size=NONCE_BYTES),
                   ct=f.get(d, "ct", bytes), sig=f.get(d, "sig", bytes, size=SIGNATURE_BYTES),
                   to=f.minion_id(d, "to") if "to" in d else "")


def publication_signed_bytes(serial: int, nonce: bytes, ct: bytes, to: str = "") -> bytes:
    return publication_aad(serial, to) + nonce + ct


def publication_aad(serial: int, to: str = "") -> bytes:
    """Broadcast: the key serial; private: also the recipient (length-prefixed), under another label."""
    if not to:
        return b"rx/pub\0" + serial_bytes(serial)
    rcpt = to.encode()
    return b"rx/ppub\0" + serial_bytes(serial) + len(rcpt).to_bytes(2, "big") + rcpt


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
    expires: float = 0.0
    """master clock: minions refuse the job from then on (0: only the freshness window applies)"""

    def to_wire(self) -> dict:
        wire = {"jid": self.jid, "fun": self.fun, "arg": self.arg, "kwarg": self.kwarg, "tgt": self.tgt,
                "tgt_type": self.tgt_type, "ts": self.ts, "user": self.user, "delimiter": self.delimiter}
        return {**wire, "expires": self.expires} if self.expires else wire

    @classmethod
    def from_wire(cls, obj: Any) -> "Job":
        d = f.as_map(obj, "job")
        fun = _funs(d)
        ts = f.number(d, "ts")
        expires = f.number(d, "expires", default=0.0)
        if expires and not ts <= expires <= ts + JOB_WINDOW:
            raise ProtocolError(f"must be 0 or within {JOB_WINDOW:g}s after ts", "expires")
        return cls(jid=check_jid(d.get("jid")), fun=fun, arg=_args(d, fun), kwarg=_kwarg(d),
                   tgt=_target(d), tgt_type=_target_type(d), ts=ts,
                   user=f.get(d, "user", str, default=""), delimiter=f.delimiter(d), expires=expires)

    def expired(self, master_now: float) -> bool:
        """Whether the job's expiry has passed at `master_now` (the master's clock)."""
        return 0.0 < self.expires < master_now


# ---------------------------------------------------------------- returns (minion -> master)

@dataclass(frozen=True)
class JobReturn:
    jid: str
    fun: str | list
    fun_args: list
    retcode: int
    success: bool
    ret: Any
    start_time: float | None = None
    end_time: float | None = None
    """When the minion started and ended the job (its own clock, epoch seconds); absent from older minions."""

    def to_wire(self) -> dict:
        wire = {"jid": self.jid, "fun": self.fun, "fun_args": self.fun_args, "retcode": self.retcode,
                "success": self.success, "return": self.ret}
        if self.start_time is not None and self.end_time is not None:
            wire["start_time"], wire["end_time"] = self.start_time, self.end_time
        return wire

    @classmethod
    def from_wire(cls, obj: Any) -> "JobReturn":
        d = f.as_map(obj, "return")
        if "return" not in d:
            raise ProtocolError("missing", "return")
        start = end = None
        if "start_time" in d or "end_time" in d:  # both or neither, finite times
            start, end = f.number(d, "start_time"), f.number(d, "end_time")
        return cls(jid=check_jid(d.get("jid")), fun=_funs(d), fun_args=f.get(d, "fun_args", list),
                   retcode=f.integer(d, "retcode", -MAX_RETCODE, MAX_RETCODE), success=f.get(d, "success", bool),
                   ret=d["return"], start_time=start, end_time=end)


@dataclass(frozen=True)
class MinionEvent:
    """An event a minion fires; the master files it under rx/minion/<authenticated id>/<tag>."""

    tag: str
    data: dict

    def to_wire(self) -> dict:
        return {"tag": self.tag, "data": self.data}

    @classmethod
    def from_wire(cls, obj: Any) -> "MinionEvent":
        d = f.as_map(obj, "event")
        tag = f.get(d, "tag", str)
        if not tag or len(tag) > 512 or not tag.isprintable() or tag.startswith("/") or ".." in tag.split("/"):
            raise ProtocolError("event tag must be 1-512 printable characters, relative, without '..'", "tag")
        return cls(tag=tag, data=f.get(d, "data", dict))
