"""Read this minion's pillar: the data the master compiled for it alone from its `pillar_roots` (and
external pillars), sent over the sealed channel and held in the minion's memory.

The functions read the pillar the minion holds; `saltutil.refresh_pillar` fetches it again (the minion
also does at start and every `pillar_refresh_interval` seconds).  Differs from Salt: `pillar.items`
returns that held pillar too, where Salt's compiles a fresh one on the master, and `pillarenv=` is
refused (set `pillarenv` in the minion config instead).  A minion that has no pillar (the master could
not compile it; the minion's log and `saltutil.refresh_pillar` say why) fails every function here with
that reason, rather than answer as if the pillar were empty.

A job's return is kept in the master's job cache: ask for the keys you need (`pillar.get`,
`pillar.item`) rather than `pillar.items`, or see the shape with `pillar.obfuscate`.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any, Mapping

from rx.modules import CommandError, ExecContext
from rx.modules import grains as _grains

__all__ = ["items", "data", "item", "raw", "get", "fetch", "keys", "ls", "obfuscate", "filter_by"]

DELIM = ":"
_MISSING = object()


def _pillar(ctx: ExecContext, pillarenv: Any = None) -> Mapping[str, Any]:
    if pillarenv is not None:
        raise CommandError("pillarenv=: rx does not compile a pillar for one call; set pillarenv in the minion "
                           "config, then run saltutil.refresh_pillar")
    pillar = getattr(ctx, "pillar", None)
    if pillar is None:
        why = getattr(ctx, "pillar_error", "") or "the master did not send one"
        raise CommandError(f"this minion has no pillar: {why}")
    return pillar


def items(ctx: ExecContext, *args: str, pillar: Any = None, pillar_enc: Any = None, pillarenv: Any = None,
          saltenv: Any = None) -> dict:
    """Return the whole pillar as a dict; with key names, {name: value} of those only (as pillar.item).
    `pillar` and `pillar_enc` (Salt's overrides for a fresh compile) are refused.

    CLI example: rx '*' pillar.items
    """
    if pillar is not None or pillar_enc is not None:
        raise CommandError("pillar=: rx does not compile a pillar for one call (no pillar override)")
    if args:
        return item(ctx, *args, pillarenv=pillarenv)
    return dict(_pillar(ctx, pillarenv))


def data(ctx: ExecContext, *args: str, pillar: Any = None, pillar_enc: Any = None, pillarenv: Any = None,
         saltenv: Any = None) -> dict:
    """Return the pillar (Salt's other name for pillar.items).

    CLI example: rx '*' pillar.data
    """
    return items(ctx, *args, pillar=pillar, pillar_enc=pillar_enc, pillarenv=pillarenv)


def item(ctx: ExecContext, *args: str, default: Any = None, delimiter: str | None = None, pillarenv: Any = None,
         saltenv: Any = None) -> dict:
    """Return {name: value} for each key named (`a:b` reaches into nested values; a missing one gives
    `default`, '' unless given).

    CLI example: rx '*' pillar.item role users:alice
    """
    pillar = _pillar(ctx, pillarenv)
    default = "" if default is None else default
    return {str(a): _grains._traverse(pillar, str(a), default, delimiter or DELIM) for a in args}


def raw(ctx: ExecContext, key: str | None = None) -> Any:
    """Return the pillar held in memory (the top-level `key` of it, {} if missing, when given).

    CLI example: rx '*' pillar.raw key=users
    """
    pillar = _pillar(ctx)
    return pillar.get(key, {}) if key else dict(pillar)


def get(ctx: ExecContext, key: str, default: Any = "", merge: bool = False, merge_nested_lists: bool | None = None,
        delimiter: str = DELIM, pillarenv: Any = None, saltenv: Any = None) -> Any:
    """Return the value of `key` (`a:b:c` for nested keys, `users:0` for a list item), or `default` ('' unless
    given) when it is missing.  With merge=True and a dict (or list) default, return the default merged with
    the pillar's value (the pillar wins; `merge_nested_lists` joins the lists inside).

    CLI example: rx '*' pillar.get users:alice:uid default=1000
    """
    pillar = _pillar(ctx, pillarenv)
    if merge and isinstance(default, dict):
        found = _grains._traverse(pillar, str(key), {}, delimiter)
        if isinstance(found, Mapping):
            return _merged(copy.deepcopy(default), found, bool(merge_nested_lists))
    elif merge and isinstance(default, list):
        found = _grains._traverse(pillar, str(key), [], delimiter)
        if isinstance(found, list):
            return copy.deepcopy(default) + [x for x in found if x not in default]
    return _grains._traverse(pillar, str(key), default, delimiter)


def fetch(ctx: ExecContext, key: str, default: Any = "", merge: bool = False, merge_nested_lists: bool | None = None,
          delimiter: str = DELIM, pillarenv: Any = None, saltenv: Any = None) -> Any:
    """Return the value of `key` (Salt's other name for pillar.get).

    CLI example: rx '*' pillar.fetch users:alice
    """
    return get(ctx, key, default, merge, merge_nested_lists, delimiter, pillarenv)


def keys(ctx: ExecContext, key: str, delimiter: str = DELIM) -> list:
    """Return the keys of the dict at `key` (`a:b` for nested); an error if it is missing or not a dict.

    CLI example: rx '*' pillar.keys users
    """
    found = _grains._traverse(_pillar(ctx), str(key), _MISSING, delimiter)
    if found is _MISSING:
        raise CommandError(f"Pillar key not found: {key}")
    if not isinstance(found, Mapping):
        raise CommandError(f"Pillar value in key {key} is not a dict")
    return list(found)


def ls(ctx: ExecContext, *args: str, pillar: Any = None, pillar_enc: Any = None, pillarenv: Any = None,
       saltenv: Any = None) -> list:
    """Return the pillar's top-level keys (or the names given that pillar.item finds).

    CLI example: rx '*' pillar.ls
    """
    return list(items(ctx, *args, pillar=pillar, pillar_enc=pillar_enc, pillarenv=pillarenv))


def obfuscate(ctx: ExecContext, *args: str, pillar: Any = None, pillar_enc: Any = None, pillarenv: Any = None,
              saltenv: Any = None) -> Any:
    """Return the pillar's shape with each value replaced by its type (`<str>`, `<int>`): what it holds,
    without showing (or storing in the job cache) the secrets.

    CLI example: rx '*' pillar.obfuscate
    """
    return _obfuscated(items(ctx, *args, pillar=pillar, pillar_enc=pillar_enc, pillarenv=pillarenv))


def filter_by(ctx: ExecContext, lookup_dict: dict, pillar: str, merge: dict | None = None, default: str = "default",
              base: str | None = None) -> Any:
    """Return the entry of `lookup_dict` whose key matches the value of the pillar key `pillar` (keys may be
    globs; a list value matches on its first item that does), else the `default` entry; `base` and `merge`
    as grains.filter_by.

    CLI example: rx '*' pillar.filter_by '{web: Serve it up, db: I query, default: x_x}' role
    """
    return _grains.filter_by(replace(ctx, grains=_pillar(ctx)), lookup_dict, pillar, merge, default, base)


def _merged(dest: dict, upd: Mapping, merge_lists: bool) -> dict:
    for k, v in upd.items():
        if isinstance(dest.get(k), dict) and isinstance(v, Mapping):
            dest[k] = _merged(dest[k], v, merge_lists)
        elif merge_lists and isinstance(dest.get(k), list) and isinstance(v, list):
            dest[k] = dest[k] + [x for x in v if x not in dest[k]]
        else:
            dest[k] = copy.deepcopy(v)
    return dest


def _obfuscated(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _obfuscated(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_obfuscated(v) for v in value]
    return f"<{type(value).__name__}>"
