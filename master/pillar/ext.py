"""External pillars: installed packages' entry points in the group `rx.pillar`, so a site can pull
pillar from Vault, a database or a command.

Each entry point names a callable `(minion_id, grains, pillar) -> dict`: it gets the pillar compiled
from the files so far (a copy) and returns the keys to merge on top of it.  They run on the master, in
the MWorker that compiles the pillar, in the order of their names, for every minion at every refresh;
installing the package is what enables one (restart the master after installing it).  One that cannot
be loaded, raises, or returns anything but a map with string keys fails that minion's compile (which
then keeps its last good pillar), naming the entry point.
"""

from __future__ import annotations

import copy
from importlib.metadata import entry_points
from typing import Any, Callable, Mapping

from rx.master.pillar.render import MAX_NODES, plain
from rx.master.pillar.sources import PillarError

GROUP = "rx.pillar"
Merge = Callable[[Mapping, Mapping], dict]


class ExtPillars:
    """The `rx.pillar` entry points, loaded on first use."""

    def __init__(self, group: str = GROUP) -> None:
        self.group = group
        self._hooks: list[tuple[str, Callable[..., Any] | BaseException]] | None = None

    def hooks(self) -> list[tuple[str, Callable[..., Any] | BaseException]]:
        """(name, callable) of each entry point, or (name, the error that kept it from loading)."""
        if self._hooks is None:
            hooks: list[tuple[str, Callable[..., Any] | BaseException]] = []
            for ep in sorted(entry_points(group=self.group), key=lambda e: e.name):
                try:
                    hooks.append((ep.name, ep.load()))
                except Exception as exc:  # reported at each compile, with the name
                    hooks.append((ep.name, exc))
            self._hooks = hooks
        return self._hooks

    def apply(self, minion_id: str, grains: dict, pillar: dict, merge: Merge) -> dict:
        for name, hook in self.hooks():
            where = f"ext_pillar {name}"
            if isinstance(hook, BaseException):
                raise PillarError(where, f"cannot be loaded: {type(hook).__name__}: {hook}")
            if not callable(hook):
                raise PillarError(where, f"the entry point is a {type(hook).__name__}, not a callable")
            try:
                extra = hook(minion_id, copy.deepcopy(grains), copy.deepcopy(pillar))
            except Exception as exc:
                raise PillarError(where, f"raised {type(exc).__name__}: {exc}") from None
            if extra is None:
                continue
            if not isinstance(extra, Mapping) or not all(isinstance(k, str) for k in extra):
                raise PillarError(where, f"returned a {type(extra).__name__}, not a map with string keys")
            pillar = merge(pillar, plain(dict(extra), where, [MAX_NODES]))
        return pillar
