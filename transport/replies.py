"""Replies on the request channel: one frozen type per answer, an error reply with an
`ErrorKind`, and `parse_reply` that turns the wire map into the expected type or raises
`ReplyError` for an error reply."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from rx.transport import fields as f
from rx.transport.errors import ErrorKind, ProtocolError, ReplyError
from rx.transport.ids import validate_minion_id
from rx.transport.messages import Job
from rx.transport.sizes import NONCE_BYTES

MAX_MESSAGE = 4096
"""Longest error message kept from a reply (a peer cannot make us log megabytes)."""


@dataclass(frozen=True)
class ErrorReply:
    kind: ErrorKind
    message: str

    def to_wire(self) -> dict:
        return {"ok": False, "error": {"type": self.kind.value, "message": self.message}}

    @classmethod
    def from_wire(cls, obj: Any) -> "ErrorReply":
        d = f.as_map(obj, "reply")
        if d.get("ok") is not False:
            raise ProtocolError("not an error reply", "ok")
        err = f.as_map(f.get(d, "error", dict), "error")
        try:
            kind = ErrorKind(f.get(err, "type", str))
        except ProtocolError as exc:
            raise exc.within("error") from None
        except ValueError:
            raise ProtocolError("unknown error kind", "error.type") from None
        try:
            message = f.get(err, "message", str)
        except ProtocolError as exc:
            raise exc.within("error") from None
        return cls(kind, message[:MAX_MESSAGE])

    def error(self) -> ReplyError:
        return ReplyError(self.kind, self.message)


@dataclass(frozen=True)
class Ack:
    """A request done, nothing to say."""

    def to_wire(self) -> dict:
        return {"ok": True}

    @classmethod
    def from_wire(cls, obj: Any) -> "Ack":
        _ok(obj)
        return cls()


@dataclass(frozen=True)
class PreviewReply:
    """The minions a target matches now; `no_grains` are those expected only because the master has
    no grains cached for them."""

    minions: list[str]
    no_grains: list[str] = field(default_factory=list)

    def to_wire(self) -> dict:
        return {"ok": True, "minions": self.minions, "no_grains": self.no_grains}

    @classmethod
    def from_wire(cls, obj: Any) -> "PreviewReply":
        d = _ok(obj)
        return cls(minions=f.str_list(d, "minions", ids=True), no_grains=f.str_list(d, "no_grains", ids=True))


@dataclass(frozen=True)
class PublishReply:
    jid: str
    minions: list[str]
    no_grains: list[str] = field(default_factory=list)
    warning: str = ""
    """Set when the job went out but the master could not store its record (a full disk)."""

    def to_wire(self) -> dict:
        out = {"ok": True, "jid": self.jid, "minions": self.minions, "no_grains": self.no_grains}
        if self.warning:
            out["warning"] = self.warning
        return out

    @classmethod
    def from_wire(cls, obj: Any) -> "PublishReply":
        d = _ok(obj)
        return cls(jid=f.check_jid(d.get("jid")), minions=f.str_list(d, "minions", ids=True),
                   no_grains=f.str_list(d, "no_grains", ids=True), warning=f.get(d, "warning", str, default=""))


@dataclass(frozen=True)
class LookupReply:
    """A job's expected minions and stored returns (`{id: return}`, as the return events carry them); the
    returns asked for that did not fit in this reply are listed in `more` (ask again for those).  `heard`:
    seconds since the master last heard from each minion asked for (those it heard from).  `connected`: the
    minions asked for that hold a live publish connection to the master now (None: the master cannot tell,
    e.g. its publisher is restarting), so a silent minion is not labelled "not connected" when it is."""

    minions: list[str]
    no_grains: list[str] = field(default_factory=list)
    returns: dict[str, dict] = field(default_factory=dict)
    more: list[str] = field(default_factory=list)
    heard: dict[str, float] = field(default_factory=dict)
    connected: list[str] | None = None

    def to_wire(self) -> dict:
        out = {"ok": True, "minions": self.minions, "no_grains": self.no_grains, "returns": self.returns,
               "more": self.more, "heard": self.heard}
        if self.connected is not None:
            out["connected"] = self.connected
        return out

    @classmethod
    def from_wire(cls, obj: Any) -> "LookupReply":
        d = _ok(obj)
        returns = _by_id(d, "returns", lambda v: isinstance(v, dict), "a map")
        heard = _by_id(d, "heard", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
                       and 0 <= v <= f.MAX_TIMESTAMP, "a number of seconds")
        return cls(minions=f.str_list(d, "minions", ids=True), no_grains=f.str_list(d, "no_grains", ids=True),
                   returns=returns, more=f.str_list(d, "more", ids=True),
                   heard={k: float(v) for k, v in heard.items()},
                   connected=f.str_list(d, "connected", ids=True) if "connected" in d else None)


def _by_id(d: dict, key: str, ok: Any, what: str) -> dict:
    """A map keyed by minion ids whose values pass `ok`."""
    value = f.get(d, key, dict)
    for minion_id, item in value.items():
        if not isinstance(minion_id, str) or validate_minion_id(minion_id):
            raise ProtocolError("must be keyed by minion ids", key)
        if not ok(item):
            raise ProtocolError(f"must be {what}", f"{key}.{minion_id}")
    return value


@dataclass(frozen=True)
class MissedReply:
    """Jobs published to a minion while its publish link was down."""

    jobs: list[Job]

    def to_wire(self) -> dict:
        return {"ok": True, "jobs": [j.to_wire() for j in self.jobs]}

    @classmethod
    def from_wire(cls, obj: Any) -> "MissedReply":
        d = _ok(obj)
        jobs = []
        for i, item in enumerate(f.get(d, "jobs", list)):
            try:
                jobs.append(Job.from_wire(item))
            except ProtocolError as exc:
                raise exc.within(f"jobs[{i}]") from None
        return cls(jobs)


@dataclass(frozen=True)
class SealedReply:
    """A reply sealed with the minion's request key (the plaintext is another reply)."""

    nonce: bytes
    ct: bytes

    def to_wire(self) -> dict:
        return {"ok": True, "enc": "aes", "nonce": self.nonce, "ct": self.ct}

    @classmethod
    def from_wire(cls, obj: Any) -> "SealedReply":
        d = _ok(obj)
        if d.get("enc") != "aes":
            raise ProtocolError("reply is not sealed", "enc")
        return cls(nonce=f.get(d, "nonce", bytes, size=NONCE_BYTES), ct=f.get(d, "ct", bytes))


def _ok(obj: Any) -> dict:
    d = f.as_map(obj, "reply")
    if d.get("ok") is not True:
        raise ProtocolError("must be true", "ok")
    return d


class _FromWire(Protocol):
    @classmethod
    def from_wire(cls, obj: Any) -> Any: ...


R = TypeVar("R", bound=_FromWire)


def is_error(obj: Any) -> bool:
    return isinstance(obj, dict) and obj.get("ok") is False


def parse_reply(obj: Any, expected: type[R]) -> R:
    """The reply as `expected`; an error reply raises ReplyError, anything malformed ProtocolError."""
    if is_error(obj):
        raise ErrorReply.from_wire(obj).error()
    return expected.from_wire(obj)
