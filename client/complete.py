"""`rx --complete KIND [-c DIR]`: the names shell completion offers, one per line (the generated scripts of
`rx.client.completion` call it).  Never touches the network: a Tab key must not wait on a master.

- minions: the accepted keys (the key store); keys: every key id, in any state; nodegroups: the config's;
- functions: the functions of this host's modules (rx -d's list), plus every name minions returned to an
  `rx ... sys.list_functions` run on this master, kept in `<cachedir>/completion/functions.json` (so the
  custom modules synced to minions complete too; the file starts afresh with each rx version);
- runners: rx-run's runners (built-in, entry points, the master's `_runners`).

Errors (no config, no permission to read the key store) print nothing: completion just offers nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from rx import __version__

CACHE = Path("completion") / "functions.json"
MAX_CACHED = 20_000
"""At most this many function names are kept (a minion cannot grow the file without bound)."""


def names(kind: str, config_dir: str | None = None) -> list[str]:
    if kind == "functions":
        return sorted(set(_local_functions()) | set(_cached_functions(_config(config_dir))))
    cfg = _config(config_dir)
    if cfg is None:
        return []
    if kind == "nodegroups":
        return sorted(cfg.nodegroups)
    if kind == "runners":
        from rx.client.runner import AsyncRunnerClient
        return AsyncRunnerClient(cfg).functions()
    import asyncio
    from rx.master.services import open_services
    services = open_services(cfg)
    try:
        listing = asyncio.run(services.keys.listing())
    finally:
        services.close()
    if kind == "minions":
        return listing["accepted"]
    return sorted({i for ids in listing.values() for i in ids})


def main(kind: str, config_dir: str | None) -> int:
    try:
        found = names(kind, config_dir)
    except Exception:  # completion offers nothing rather than a traceback in the middle of a command line
        return 1
    for name in found:
        print(name)
    return 0


def _config(config_dir: str | None) -> Any:
    from rx.config import ConfigError, load_master_config
    try:
        return load_master_config(config_dir)
    except (ConfigError, OSError):
        return None


def _local_functions() -> list[str]:
    from rx.minion.registry import Registry
    return Registry().functions()


def _cache_path(cfg: Any) -> Path:
    return Path(cfg.cachedir) / CACHE


def _cached_functions(cfg: Any) -> list[str]:
    if cfg is None:
        return []
    try:
        data = json.loads(_cache_path(cfg).read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(data, dict) or data.get("version") != __version__:
        return []
    return [f for f in data.get("functions", []) if isinstance(f, str)]


def remember_functions(cfg: Any, results: dict) -> None:
    """After `rx TARGET sys.list_functions`: add the names the minions returned to the completion cache.
    Best effort (a cachedir this user cannot write keeps the old list); never raises."""
    from rx.transport.ids import FUN_RE
    returned = {f for ret in results.values() if isinstance(ret, list) for f in ret
                if isinstance(f, str) and FUN_RE.match(f)}
    if not returned:
        return
    path = _cache_path(cfg)
    known = set(_cached_functions(cfg))
    if returned <= known:
        return
    try:
        path.parent.mkdir(mode=0o700, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"version": __version__, "functions": sorted(known | returned)[:MAX_CACHED]}))
        os.replace(tmp, path)
    except OSError:
        pass
