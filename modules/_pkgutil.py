"""What the pkg back ends (aptpkg, dnfpkg, apkpkg) share: turning Salt-style arguments into a list of
targets, and installed-package snapshots into Salt's `{name: {'old': ..., 'new': ...}}` changes.  Pure
functions; not a module users can call (not in MODULES)."""

from __future__ import annotations

import os
import re
from typing import Any, Callable, Mapping

from rx.modules import CommandError
from rx.modules._syscmd import check_name

VERSION_RE = re.compile(r"[A-Za-z0-9.+~:_-]{1,128}")


def targets(name: Any = None, pkgs: Any = None, version: Any = None) -> list[tuple[str, str | None]]:
    """[(package, version or None)] from Salt's arguments: `name` (with an optional `version`), or `pkgs`, a
    list whose items are names or one-entry mappings {name: version}.  CommandError if there is none or one
    is malformed."""
    out: list[tuple[str, str | None]] = []
    if pkgs not in (None, "", []):
        if isinstance(pkgs, str):
            pkgs = [p.strip() for p in pkgs.split(",") if p.strip()]
        if not isinstance(pkgs, list):
            raise CommandError(f"pkgs must be a list of package names, got {type(pkgs).__name__}")
        for item in pkgs:
            if isinstance(item, Mapping) and len(item) == 1:
                (pkg, ver), = item.items()
                out.append((check_name(pkg, "package"), _version(ver)))
            else:
                out.append((check_name(item, "package"), None))
    elif name not in (None, ""):
        out.append((check_name(name, "package"), _version(version)))
    if not out:
        raise CommandError("name a package (name=...) or several (pkgs=[...])")
    return out


def _version(value: Any) -> str | None:
    if value in (None, ""):
        return None
    text = str(value)
    if not VERSION_RE.fullmatch(text):
        raise CommandError(f"version must be 1-128 characters of letters, digits and .+~:_-, got {value!r}")
    return text


def joined(versions: Any) -> str:
    """One version string from a list-or-string entry of a package snapshot (several installed: comma-joined,
    as Salt shows them)."""
    return ",".join(versions) if isinstance(versions, list) else (versions or "")


def changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Salt's changes between two `{package: version}` snapshots: {package: {'old': v or '', 'new': v or ''}}
    for every package whose version differs."""
    out = {}
    for pkg in sorted(set(old) | set(new)):
        before, after = joined(old.get(pkg)), joined(new.get(pkg))
        if before != after:
            out[pkg] = {"old": before, "new": after}
    return out


def one_or_many(names: tuple[str, ...], values: Mapping[str, Any], missing: Any = "") -> Any:
    """Salt's return shape for functions taking `*names`: the value itself for one name, {name: value} for
    several."""
    if len(names) == 1:
        return values.get(names[0], missing)
    return {n: values.get(n, missing) for n in names}


def as_versions(snapshot: Mapping[str, list[str]], versions_as_list: bool) -> dict[str, Any]:
    """A snapshot {name: [versions]} shaped like Salt's list_pkgs: versions comma-joined, or lists kept."""
    if versions_as_list:
        return {k: list(v) for k, v in sorted(snapshot.items())}
    return {k: ",".join(v) for k, v in sorted(snapshot.items())}


def add_version(snapshot: dict[str, list[str]], name: str, version: str) -> None:
    """Record that `version` of `name` is installed (several versions of one name happen: kernels, multiarch)."""
    versions = snapshot.setdefault(name, [])
    if version not in versions:
        versions.append(version)


def apply(snapshot: Callable[[], Mapping[str, Any]], action: Callable[[], Any]) -> dict[str, dict[str, str]]:
    """Run `action` (the package tool) between two snapshots; return the changes.  When it fails after
    changing something, the error says what changed."""
    before = snapshot()
    try:
        action()
    except CommandError as exc:
        done = changes(before, snapshot())
        if done:
            raise CommandError(f"{exc}; changes made before it failed: {done}") from None
        raise
    return changes(before, snapshot())


def local_files(sources: Any, suffix: str) -> list[str]:
    """The package files of Salt's `sources=[{name: /absolute/path.deb}]` (local files only), checked to
    exist."""
    paths = []
    for item in sources if isinstance(sources, list) else [sources]:
        path = next(iter(item.values())) if isinstance(item, Mapping) and len(item) == 1 else item
        if not isinstance(path, str) or not path.startswith("/") or not path.endswith(suffix):
            raise CommandError(f"sources must be {suffix} files by absolute path ([{{name: /path/x{suffix}}}]), "
                               f"got {item!r}")
        if not os.path.isfile(path):
            raise CommandError(f"{path} does not exist")
        paths.append(path)
    return paths
