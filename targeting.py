"""Target matching, shared by the master (expected minions) and the minion (self-match).

Both sides call `compile_target` on the same (tgt, tgt_type), so they cannot
disagree on the grammar.  Bad expressions raise TargetError with a message fit
for the user.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping


class TargetError(ValueError):
    """A target expression that cannot be parsed or used."""


@dataclass(frozen=True)
class MinionFacts:
    """What a matcher may look at: the id, and grains when known (None = not cached)."""

    id: str
    grains: Mapping[str, Any] | None = field(default=None)


@dataclass(frozen=True)
class Target:
    """A compiled target: `match` decides one minion."""

    expr: str | list
    tgt_type: str
    match: Callable[[MinionFacts], bool]

    def select(self, minions: Iterable[MinionFacts]) -> list[str]:
        return sorted(m.id for m in minions if self.match(m))


def _split_list(tgt: str | list) -> set[str]:
    if isinstance(tgt, list):
        return {str(t) for t in tgt}
    return {t for t in re.split(r"[,\s]+", tgt) if t}


def _glob(tgt: str) -> Callable[[MinionFacts], bool]:
    pattern = re.compile(fnmatch.translate(tgt))
    return lambda m: pattern.match(m.id) is not None


def _pcre(tgt: str) -> Callable[[MinionFacts], bool]:
    try:
        pattern = re.compile(tgt)
    except re.error as exc:
        raise TargetError(f"bad regular expression {tgt!r}: {exc}") from None
    return lambda m: pattern.match(m.id) is not None


def _list(tgt: str | list) -> Callable[[MinionFacts], bool]:
    ids = _split_list(tgt)
    return lambda m: m.id in ids


_SIMPLE: dict[str, Callable[[Any], Callable[[MinionFacts], bool]]] = {
    "glob": _glob,
    "pcre": _pcre,
    "list": _list,
}


def compile_target(tgt: str | list, tgt_type: str = "glob") -> Target:
    """Compile a target expression; raises TargetError for a bad one."""
    builder = _SIMPLE.get(tgt_type)
    if builder is None:
        raise TargetError(f"target type {tgt_type!r} is not supported (use one of: {', '.join(_SIMPLE)})")
    if tgt_type != "list" and not isinstance(tgt, str):
        raise TargetError(f"a {tgt_type} target must be a string")
    if isinstance(tgt, str) and not tgt.strip():
        raise TargetError("empty target")
    return Target(tgt, tgt_type, builder(tgt))
