"""The sealed `_pillar` request and its reply: a minion asks the master for its own pillar.

The request carries the minion's grains (the master renders the pillar with them, as Salt's does) and
the pillar environment it wants ("" for all of them).  It names no minion: the master compiles the
pillar of the minion whose key sealed the request.  A request that names another id anyway (Salt's
`id` field) is refused by the master, and logged.  The reply is sealed to that minion and bound to
its request, like every sealed reply (`transport.secure.seal_reply`).  When the pillar does not compile,
the reply is the last pillar that minion was sent with the error, or a RENDER error if it never got one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rx.transport import fields as f
from rx.transport.errors import ProtocolError
from rx.transport.ids import ENV_RE

PILLAR = "_pillar"
MAX_PILLAR_BYTES = 12 * 1024 * 1024
"""Largest encoded pillar the master sends (under the 16 MB frame limit, with room for the envelope)."""
MAX_ERROR = 4096


def check_env(value: Any, key: str) -> str:
    if not isinstance(value, str) or (value and not ENV_RE.match(value)):
        raise ProtocolError("must be an environment name (letters, digits, '_', '.', '-'; at most 64)", key)
    return value


@dataclass(frozen=True)
class PillarRequest:
    """A minion's request for its pillar, rendered with `grains`, from `pillarenv` ("" = every environment).
    `id` is what the minion says it is ("" when it does not say): the master refuses one that is not the id
    its key proved."""

    grains: dict
    pillarenv: str = ""
    id: str = ""

    def to_wire(self) -> dict:
        out: dict[str, Any] = {"grains": self.grains, "pillarenv": self.pillarenv}
        if self.id:
            out["id"] = self.id
        return out

    @classmethod
    def from_wire(cls, obj: Any) -> "PillarRequest":
        d = f.as_map(obj, "pillar request")
        grains = f.get(d, "grains", dict)
        if not all(isinstance(k, str) for k in grains):
            raise ProtocolError("grain names must be strings", "grains")
        return cls(grains=grains, pillarenv=check_env(f.get(d, "pillarenv", str, default=""), "pillarenv"),
                   id=f.minion_id(d) if "id" in d else "")


@dataclass(frozen=True)
class PillarReply:
    """The minion's compiled pillar (a map with string keys at the top).  With `error`, the pillar could not be
    compiled now (the error names the file and line) and `pillar` is the last one this minion was sent."""

    pillar: dict
    error: str = ""

    def to_wire(self) -> dict:
        return {"ok": True, "pillar": self.pillar, **({"error": self.error} if self.error else {})}

    @classmethod
    def from_wire(cls, obj: Any) -> "PillarReply":
        d = f.as_map(obj, "reply")
        if d.get("ok") is not True:
            raise ProtocolError("must be true", "ok")
        pillar = f.get(d, "pillar", dict)
        if not all(isinstance(k, str) for k in pillar):
            raise ProtocolError("top-level keys must be strings", "pillar")
        return cls(pillar, f.get(d, "error", str, default="")[:MAX_ERROR])
