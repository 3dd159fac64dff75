"""Experimental patches, applied by monkeypatching, to measure their effect before
anyone edits the core.  Bench-only: nothing outside bench/ imports this.  The
patches that paid off are in the core now; what is left here was measured and
not taken (see RESULTS.md, "Analysis").

    python -m bench --patch master_proxies_one_process --only real --no-write

With patches selected, every daemon and CLI the benchmark starts runs through
`python -m rx.bench.patched MODULE:FUNC ARGS...`, which applies them first (the
master's children are forked, so they inherit them); the swarm processes and
the benchmark process apply them on import.  Each patch here is a sketch of a
change proposed for the core (see RESULTS.md, "Analysis"): same behaviour,
less work.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Callable

ENV = "RX_BENCH_PATCHES"
_applied: set[str] = set()


def _cli_no_ssl() -> None:
    """client/cli.py: the CLI never uses TLS; keep asyncio from importing `ssl` (~4 ms)."""
    if "asyncio" not in sys.modules:
        sys.modules.setdefault("ssl", None)  # type: ignore[arg-type]


def _master_proxies_one_process() -> None:
    """master/daemon.py Supervisor: run the three zmq proxies (request server, publisher, event
    publisher) as threads of one child process instead of three processes.  zmq.proxy runs
    in C without the GIL, so nothing is serialised, and the supervisor still restarts the
    child if it dies.  Two fewer forked processes: ~50 MB less RSS summed over the master."""
    import threading

    from rx.master import daemon, eventpub, publisher, reqserver

    def proxies(cfg) -> None:
        for target in (eventpub.main, publisher.main):
            threading.Thread(target=target, args=(cfg,), daemon=True).start()
        reqserver.main(cfg)

    orig_init = daemon.Supervisor.__init__

    def __init__(self, cfg, *args, **kwargs) -> None:
        orig_init(self, cfg, *args, **kwargs)
        drop = {"event-publisher", "publisher", "request-server"}
        self.children = [daemon.Child("proxies", proxies, (cfg,))] + [c for c in self.children if c.name not in drop]

    daemon.Supervisor.__init__ = __init__


def _minion_no_ssl() -> None:
    """minion/daemon.py main(): keep the `ssl` module (asyncio imports it, the minion never uses
    it) out of the minion: `sys.modules.setdefault("ssl", None)` before asyncio is imported
    saves the second copy of OpenSSL (cryptography bundles its own)."""
    if "asyncio" not in sys.modules:
        sys.modules.setdefault("ssl", None)  # type: ignore[arg-type]


PATCHES: dict[str, Callable[[], None]] = {
    "minion_no_ssl": _minion_no_ssl,
    "cli_no_ssl": _cli_no_ssl,
    "master_proxies_one_process": _master_proxies_one_process,
}
SCOPES: dict[str, tuple[str, ...]] = {
    "minion_no_ssl": ("rx.minion.",),
    "cli_no_ssl": ("rx.client.cli",),
    "master_proxies_one_process": ("rx.master.daemon",),
}
"""Which processes each patch is applied in (by entry-point module prefix; "bench" is the benchmark
process itself, "swarm" the swarm processes), so a process imports nothing it would not import anyway."""


def selected() -> list[str]:
    names = [n for n in os.environ.get(ENV, "").split(",") if n]
    bad = [n for n in names if n not in PATCHES]
    if bad:
        raise SystemExit(f"unknown patch(es) {', '.join(bad)}; known: {', '.join(PATCHES)}")
    return names


def apply(names: list[str] | None = None, *, target: str = "bench") -> list[str]:
    """Apply the selected patches whose scope covers `target` (an entry-point module, "bench" or "swarm")."""
    for name in selected() if names is None else names:
        if name not in _applied and any(target.startswith(scope) for scope in SCOPES[name]):
            PATCHES[name]()
            _applied.add(name)
    return sorted(_applied)


def main() -> None:
    """`python -m rx.bench.patched MODULE:FUNC [ARGS...]`: apply $RX_BENCH_PATCHES, then run FUNC."""
    if len(sys.argv) < 2 or ":" not in sys.argv[1]:
        raise SystemExit("usage: python -m rx.bench.patched MODULE:FUNC [ARGS...]")
    target = sys.argv[1]
    module, func = target.split(":", 1)
    apply(target=module)
    sys.argv = [module, *sys.argv[2:]]
    getattr(importlib.import_module(module), func)()


if __name__ == "__main__":
    main()
