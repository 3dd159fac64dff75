"""`rx-call FUN` on a minion host sends its return to the master: the sealed `_call_return` command
carries what ran and what it returned; the master records it as a job of its own (a new jid,
targeting that minion alone) and answers with the jid."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rx.transport import fields as f
from rx.transport.errors import ProtocolError
from rx.transport.ids import FUN_RE
from rx.transport.messages import MAX_RETCODE

CALL_RETURN = "_call_return"
RX_CALL_USER = "rx-call"
"""The `user` of the jobs rx-call records (the minion's own word on who ran it is not taken)."""


@dataclass(frozen=True)
class CallReturn:
    fun: str
    arg: list
    kwarg: dict
    retcode: int
    success: bool
    ret: Any

    def to_wire(self) -> dict:
        return {"fun": self.fun, "arg": self.arg, "kwarg": self.kwarg, "retcode": self.retcode,
                "success": self.success, "return": self.ret}

    @classmethod
    def from_wire(cls, obj: Any) -> "CallReturn":
        d = f.as_map(obj, "call return")
        fun = f.get(d, "fun", str)
        if not FUN_RE.match(fun):
            raise ProtocolError("must be 'module.function'", "fun")
        kwarg = f.get(d, "kwarg", dict)
        if not all(isinstance(k, str) for k in kwarg):
            raise ProtocolError("keyword argument names must be strings", "kwarg")
        if "return" not in d:
            raise ProtocolError("missing", "return")
        return cls(fun=fun, arg=f.get(d, "arg", list), kwarg=kwarg,
                   retcode=f.integer(d, "retcode", -MAX_RETCODE, MAX_RETCODE), success=f.get(d, "success", bool),
                   ret=d["return"])


@dataclass(frozen=True)
class CallReply:
    """The jid the master filed an rx-call return under."""

    jid: str

    def to_wire(self) -> dict:
        return {"ok": True, "jid": self.jid}

    @classmethod
    def from_wire(cls, obj: Any) -> "CallReply":
        return cls(f.check_jid(f.as_map(obj, "reply").get("jid")))
