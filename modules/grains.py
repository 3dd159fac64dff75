"""Read and set the minion's grains: facts about the host computed at start (core grains, custom
grain functions) and static grains (the minion config's `grains:` and the grains file).

Static grains set here (`setval`, `setvals`, `append`, `remove`, `set`, `delval`, `delkey`) are
kept in the grains file, `<config dir>/grains` (Salt's `/etc/salt/grains`), a YAML mapping.  When
a job has changed that file the minion merges it again and sends its grains to the master before
the job's return goes out, so a grain target right after (`rx -G role:db ...`) already sees the
change.  A grain set in the minion config's `grains:` overrides the grains file, so setting it
here is refused with a message that says where to change it.
"""

from __future__ import annotations

import copy
import fcntl
import fnmatch
import os
from typing import Any, Mapping

from rx.grainsfile import GrainsFileError, grains_file_path, read_grains_file, write_grains_file
from rx.modules import CommandError, ExecContext

__all__ = ["items", "item", "get", "ls", "has_value", "equals", "setval", "setvals", "append", "remove", "set",
           "delval", "delkey", "filter_by"]

DELIM = ":"
_MISSING = object()
_SANITIZED = {"host": "MINION", "localhost": "MINION", "nodename": "MINION", "id": "MINION",
              "fqdn": "MINION.DOMAINNAME", "domain": "DOMAINNAME"}


def _update_file(ctx: ExecContext, changes: Mapping[str, Any], destructive: bool) -> None:
    """Apply {grain: value} to the grains file (None with `destructive` removes the grain), under an
    exclusive lock on the config dir so two jobs never lose each other's change."""
    try:
        path = grains_file_path(ctx.config)
    except GrainsFileError as exc:
        raise CommandError(str(exc)) from None
    in_config = getattr(ctx.config, "grains", None) or {}
    shadowed = sorted(k for k in changes if k in in_config)
    if shadowed:
        raise CommandError(f"{', '.join(shadowed)}: set in the minion config ({ctx.config.config_dir}/minion, "
                           "`grains:`), which overrides the grains file: change it there")
    try:
        lock = os.open(os.path.dirname(path), os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise CommandError(f"cannot open the config dir {os.path.dirname(path)}: {exc.strerror}") from None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        grains = read_grains_file(path)
        for key, value in changes.items():
            if value is None and destructive:
                grains.pop(key, None)
            else:
                grains[key] = value
        write_grains_file(path, grains)
    except GrainsFileError as exc:
        raise CommandError(str(exc)) from None
    except OSError as exc:
        raise CommandError(f"cannot write the grains file {path}: {exc.strerror or exc}") from None
    finally:
        os.close(lock)


# ------------------------------------------------------------ reading

def _traverse(data: Any, key: str, default: Any, delimiter: str) -> Any:
    """data[a][b]... for key `a:b`; a list level takes an index (`ipv4:0`) or the first dict in it
    that has the key."""
    ptr = data
    for part in key.split(delimiter):
        if isinstance(ptr, Mapping) and part in ptr:
            ptr = ptr[part]
        elif isinstance(ptr, list):
            if part.lstrip("-").isdigit() and -len(ptr) <= int(part) < len(ptr):
                ptr = ptr[int(part)]
            else:
                found = [d[part] for d in ptr if isinstance(d, Mapping) and part in d]
                if not found:
                    return default
                ptr = found[0]
        else:
            return default
    return ptr


def _sanitized(grains: dict) -> dict:
    out = {k: (_SANITIZED[k] if k in _SANITIZED and v else v) for k, v in grains.items()}
    if out.get("serialnumber"):
        out["serialnumber"] = "x" * len(str(out["serialnumber"]))
    return out


def items(ctx: ExecContext, sanitize: bool = False) -> dict:
    """Return all grains as a dict; `sanitize=True` masks the host's names and serial number.

    CLI example: rx '*' grains.items
    """
    grains = dict(ctx.grains)
    return _sanitized(grains) if sanitize else grains


def item(ctx: ExecContext, *names: str, default: Any = "", delimiter: str = DELIM, sanitize: bool = False) -> dict:
    """Return {name: value} for the named grains (`a:b` reaches into nested values; a missing one
    gives `default`).

    CLI example: rx '*' grains.item os osrelease oscodename
    """
    out = {n: _traverse(ctx.grains, str(n), default, delimiter) for n in names}
    return _sanitized(out) if sanitize else out


def get(ctx: ExecContext, key: str, default: Any = "", delimiter: str = DELIM, ordered: bool = True) -> Any:
    """Return one grain's value, or `default` ('' unless given) when it is not set; `pkg:apache`
    reaches into nested dicts, `ipv4:0` into lists; `delimiter` replaces ':'.

    CLI example: rx '*' grains.get os; rx '*' grains.get locale_info:timezone
    """
    return _traverse(ctx.grains, str(key), default, delimiter)


def ls(ctx: ExecContext) -> list:
    """Return the sorted names of all grains.

    CLI example: rx '*' grains.ls
    """
    return sorted(ctx.grains)


def has_value(ctx: ExecContext, key: str) -> bool:
    """Return True if the grain `key` (`a:b` for nested) exists, whatever its value.

    CLI example: rx '*' grains.has_value systemd:version
    """
    return _traverse(ctx.grains, str(key), _MISSING, DELIM) is not _MISSING


def equals(ctx: ExecContext, key: str, value: Any) -> bool:
    """Return True if the grain `key` has this value (compared as text, so `osmajorrelease 12` works).

    CLI example: rx '*' grains.equals os_family Debian
    """
    return str(_traverse(ctx.grains, str(key), None, DELIM)) == str(value)


def filter_by(ctx: ExecContext, lookup_dict: dict, grain: str = "os_family", merge: dict | None = None,
              default: str = "default", base: str | None = None) -> Any:
    """Return the entry of `lookup_dict` whose key matches this minion's `grain` value (keys may
    be glob patterns; a list grain matches on its first item that does), else the `default` key's
    entry (None if neither).  The `base` entry, if given and present, is merged under the result,
    and `merge` (a dict) over it.

    CLI example: rx '*' grains.filter_by '{Debian: apache2, RedHat: httpd}'
    """
    if not isinstance(lookup_dict, Mapping):
        raise CommandError(f"filter_by: lookup_dict must be a dict, got {type(lookup_dict).__name__}")
    value = _traverse(ctx.grains, str(grain), [], DELIM)
    ret = None
    for each in value if isinstance(value, list) else [value]:
        ret = next((lookup_dict[k] for k in lookup_dict if fnmatch.fnmatchcase(str(each), str(k))), None)
        if ret is not None:
            break
    if ret is None:
        ret = lookup_dict.get(default)
    if base and base in lookup_dict:
        if ret is None:
            ret = lookup_dict[base]
        elif isinstance(lookup_dict[base], Mapping):
            if not isinstance(ret, Mapping):
                raise CommandError("filter_by: the base entry and the selected entry must both be dicts")
            ret = _deep_merge(copy.deepcopy(lookup_dict[base]), ret)
    if merge:
        if not isinstance(merge, Mapping):
            raise CommandError(f"filter_by: merge must be a dict, got {type(merge).__name__}")
        ret = merge if ret is None else _deep_merge(copy.deepcopy(ret) if isinstance(ret, Mapping) else ret, merge)
    return ret


def _deep_merge(dest: Any, upd: Mapping) -> Any:
    if not isinstance(dest, dict):
        raise CommandError("filter_by: merge applies to a dict, the selected entry is not one")
    for k, v in upd.items():
        dest[k] = _deep_merge(dest[k], v) if isinstance(dest.get(k), dict) and isinstance(v, Mapping) \
            else copy.deepcopy(v)
    return dest


# ------------------------------------------------------------ setting (kept in the grains file)

def setvals(ctx: ExecContext, grains: dict, destructive: bool = False, refresh_pillar: bool = True) -> dict:
    """Set several static grains in the grains file and return them; with `destructive`, a grain
    given None is removed from the file.  `refresh_pillar` is accepted for Salt's sake: the minion sends
    its new grains to the master, and the pillar follows them at its next refresh
    (`saltutil.refresh_pillar` for now).

    CLI example: rx '*' grains.setvals "{role: db, rack: r12}"
    """
    if not isinstance(grains, Mapping) or not all(isinstance(k, str) and k for k in grains):
        raise CommandError("setvals: grains must be a dict of grain names to values, e.g. \"{role: db}\"")
    _update_file(ctx, grains, destructive)
    return dict(grains)


def setval(ctx: ExecContext, key: str, val: Any, destructive: bool = False, refresh_pillar: bool = True) -> dict:
    """Set one static grain in the grains file; return {key: val}.

    CLI example: rx '*' grains.setval role db
    """
    return setvals(ctx, {str(key): val}, destructive, refresh_pillar)


def _set_nested(ctx: ExecContext, key: str, value: Any, delimiter: str, destructive: bool = False) -> dict:
    """Store `value` at `a:b:c` (building the dicts on the way) and write the top grain `a`."""
    top, *path = key.split(delimiter)
    if not path:
        return setvals(ctx, {top: value}, destructive)
    tree = copy.deepcopy(ctx.grains.get(top, {}))
    if not isinstance(tree, dict):
        raise CommandError(f"the grain {top!r} is not a dict, so {key!r} cannot be set in it")
    node = tree
    for part in path[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise CommandError(f"{key!r}: {part!r} is not a dict")
    if value is None and destructive:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value
    return setvals(ctx, {top: tree})


def append(ctx: ExecContext, key: str, val: Any, convert: bool = False, delimiter: str = DELIM) -> Any:
    """Append `val` (or each item of a list `val`) to the list grain `key`, created if missing;
    `convert=True` turns a single value into a list first.  Return {top grain: its new value}.

    CLI example: rx '*' grains.append roles web
    """
    current = _traverse(ctx.grains, str(key), [], delimiter)
    if convert and not isinstance(current, list):
        current = [] if current is None else [current]
    if not isinstance(current, list):
        raise CommandError(f"The key {key} is not a valid list (convert=True makes it one)")
    if val in current:
        return f"The val {val} was already in the list {key}"
    new = current + (list(val) if isinstance(val, list) else [val])
    return _set_nested(ctx, str(key), new, delimiter)


def remove(ctx: ExecContext, key: str, val: Any, delimiter: str = DELIM) -> Any:
    """Remove `val` from the list grain `key`; return {top grain: its new value}.

    CLI example: rx '*' grains.remove roles web
    """
    current = _traverse(ctx.grains, str(key), [], delimiter)
    if not isinstance(current, list):
        raise CommandError(f"The key {key} is not a valid list")
    if val not in current:
        return f"The val {val} was not in the list {key}"
    return _set_nested(ctx, str(key), [v for v in current if v != val], delimiter)


def set(ctx: ExecContext, key: str, val: Any = "", force: bool = False, destructive: bool = False,
        delimiter: str = DELIM) -> dict:
    """Set `key` (nested as `a:b:c`) to `val`, without overwriting a dict or list (or putting one
    over a plain value) unless `force`; return {comment, changes, result} as Salt.

    CLI example: rx '*' grains.set apps:myapp:port 2209
    """
    existing = _traverse(ctx.grains, str(key), _MISSING, delimiter)
    if existing is not _MISSING and existing == val and (val is not None or not destructive):
        return {"comment": "Grain is already set", "changes": {}, "result": True}
    if existing not in (_MISSING, None) and not force:
        if isinstance(existing, (dict, list)):
            return {"comment": f"The key '{key}' exists but is a dict or a list. Use 'force=True' to overwrite.",
                    "changes": {}, "result": False}
        if isinstance(val, (dict, list)):
            return {"comment": f"The key '{key}' exists and the given value is a dict or a list. "
                               "Use 'force=True' to overwrite.", "changes": {}, "result": False}
    changes = _set_nested(ctx, str(key), val, delimiter, destructive)
    return {"comment": "", "changes": changes, "result": True}


def delval(ctx: ExecContext, key: str, destructive: bool = False, force: bool = False) -> dict:
    """Set the static grain `key` to None in the grains file (`destructive=True` removes it);
    a dict or list grain needs `force=True`.  Return {comment, changes, result}.

    CLI example: rx '*' grains.delval role
    """
    return set(ctx, key, None, force=force, destructive=destructive)


def delkey(ctx: ExecContext, key: str, force: bool = False) -> dict:
    """Remove the static grain `key` from the grains file.  Return {comment, changes, result}.

    CLI example: rx '*' grains.delkey role
    """
    return delval(ctx, key, destructive=True, force=force)
