"""Module and grain sync: the `_modules` and `_grains` directories of the master's file roots, brought
to `<cachedir>/extmods/modules` and `<cachedir>/extmods/grains`, where the loader finds them.

`sync(files, kind, saltenv)` fetches each `*.py` file directly in `_<kind>/` (through the file
client's cache, so only changed files travel and every one is checked against the master's sha256),
copies the new and changed ones into place (never half written), removes the synced files the master no
longer has, and returns what it added or changed as Salt does: `["modules.mymod"]` (a removal reloads
the loader but is not listed, as in Salt).  When anything changed it tells the minion process
(`FileClient.notify_synced`), which reloads that kind.  Files in subdirectories and names that are not
Python identifiers are not synced.
"""

from __future__ import annotations

import logging
import os
import re

from rx.minion.fileclient import FileClient, FileClientError, copy_into_place, local_sha256
from rx.minion.jobchannel import SYNC_KINDS

log = logging.getLogger("rx.minion")

KINDS = SYNC_KINDS
"""What a minion syncs (`_runners` stays on the master: `FileServer.special_files("runners")`)."""
EXTMODS = "extmods"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\.py\Z")


def extmods_dir(cachedir: str, kind: str) -> str:
    return os.path.join(cachedir, EXTMODS, kind)


def sync(files: FileClient, kind: str, saltenv: str | None = None) -> list[str]:
    """Sync one kind (`modules` or `grains`); the `kind.name` of each module added or changed."""
    if kind not in KINDS:
        raise ValueError(f"cannot sync {kind!r}: only {', '.join(KINDS)}")
    env = saltenv or files.saltenv
    source = f"_{kind}"
    listing = files.list(source + "/", env)
    wanted: dict[str, str] = {}
    for rel in listing.files:
        name = rel[len(source) + 1:]
        if "/" in name or not _NAME.match(name):
            log.info("sync %s: skipping %s (only *.py files directly in %s/ are synced)", kind, rel, source)
            continue
        wanted[name] = rel
    dest_dir = extmods_dir(files.cachedir, kind)
    os.makedirs(dest_dir, exist_ok=True)
    changed = []
    for name, rel in sorted(wanted.items()):
        dest = os.path.join(dest_dir, name)
        sha = listing.files[rel][1]
        if os.path.isfile(dest) and not os.path.islink(dest) and local_sha256(dest) == sha:
            continue
        copy_into_place(files.fetch(rel, env), dest, makedirs=False)
        if local_sha256(dest) != sha:
            raise FileClientError(f"{dest} does not match the master's sha256 after the copy (changed meanwhile?)")
        changed.append(f"{kind}.{name[:-3]}")
    removed = _remove_stale(dest_dir, set(wanted))
    if changed or removed:
        log.info("sync %s from %s: changed %s, removed %s", kind, env, changed, removed)
        files.notify_synced([kind])
    return changed


def sync_all(files: FileClient, saltenv: str | None = None) -> dict[str, list[str]]:
    """Every kind: `{"modules": [...], "grains": [...]}`."""
    return {kind: sync(files, kind, saltenv) for kind in KINDS}


def _remove_stale(dest_dir: str, wanted: set[str]) -> list[str]:
    """Remove the synced modules the master no longer has (and their compiled copies)."""
    removed = []
    for entry in os.scandir(dest_dir):
        if entry.name.endswith(".py") and entry.name not in wanted and (entry.is_file() or entry.is_symlink()):
            os.unlink(entry.path)
            removed.append(entry.name[:-3])
    cache = os.path.join(dest_dir, "__pycache__")
    if removed and os.path.isdir(cache):
        for entry in os.scandir(cache):
            if entry.name.split(".", 1)[0] in removed:
                os.unlink(entry.path)
    return removed
