"""Read a value from the minion's configuration, its grains or its pillar, as Salt's
`config.get` does: the first of those that has the key wins."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from rx.modules import CommandError, ExecContext

__all__ = ["get"]

_MISSING = object()


def _config(ctx: ExecContext) -> Mapping[str, Any]:
    cfg = ctx.config
    if cfg is None:
        return {}
    if dataclasses.is_dataclass(cfg):
        return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}
    return cfg if isinstance(cfg, Mapping) else {}


def _traverse(data: Any, key: str, delimiter: str) -> Any:
    """The value at `key` ('a:b:0' walks maps, and lists by index) or _MISSING."""
    for part in key.split(delimiter):
        if isinstance(data, Mapping) and part in data:
            data = data[part]
        elif isinstance(data, (list, tuple)) and part.lstrip("-").isdigit() and -len(data) <= int(part) < len(data):
            data = data[int(part)]
        else:
            return _MISSING
    return data


def _merged(values: list[Any], deep: bool) -> Any:
    """Maps found in several places merged, the earlier place winning."""
    out: dict = {}
    for value in reversed(values):
        for k, v in value.items():
            if deep and isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
                v = _merged([v, out[k]], deep)
            out[k] = v
    return out


def get(ctx: ExecContext, key: str, default: Any = "", delimiter: str = ":", merge: str | None = None,
        omit_opts: bool = False, omit_pillar: bool = False, omit_master: bool = False,
        omit_grains: bool = False) -> Any:
    """Return the value of `key` from the minion's config, else its grains, else its pillar (the one
    it holds in memory; skipped if it has none), else `default` ('' unless given).  'a:b' looks inside nested maps (and lists by
    index); `delimiter` changes the ':'.  merge='recurse' (or 'overwrite', one level) merges the
    maps found in several places instead of taking the first.  omit_opts/omit_grains/omit_pillar
    skip a place; the master's config is not readable from a minion in rx (omit_master is accepted).

    CLI example: rx '*' config.get master
    """
    if not isinstance(key, str) or not key:
        raise CommandError(f"key must be a non-empty string, got {key!r}")
    if not isinstance(delimiter, str) or not delimiter:
        raise CommandError("delimiter must be a non-empty string")
    if merge not in (None, "", "recurse", "overwrite"):
        raise CommandError(f"merge {merge!r}: use 'recurse' or 'overwrite'")
    places = [] if omit_opts else [_config(ctx)]
    if not omit_grains:
        places.append(ctx.grains or {})
    if not omit_pillar:
        places.append(getattr(ctx, "pillar", None) or {})
    found = [v for v in (_traverse(p, key, delimiter) for p in places) if v is not _MISSING]
    if not found:
        return default
    maps = [v for v in found if isinstance(v, Mapping)]
    if merge and len(maps) > 1 and isinstance(found[0], Mapping):
        return _merged(maps, deep=merge == "recurse")
    return found[0]
