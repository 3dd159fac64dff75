"""Grains: facts about the minion host, in layers, merged in this order (a later layer overrides an
earlier one on the same key):

1. core grains, computed at start (`system`, `osinfo`, `hardware`, `network`): Salt's names and shapes;
2. custom grain functions (`custom`): entry points `rx.grains`, then `<cachedir>/extmods/grains`;
3. the grains file `<config_dir>/grains` (what `grains.setval` & co write);
4. the minion config's `grains:` mapping.

This is the order Salt's code applies (its documentation ranks custom modules last; rx puts the
grains file above them so that `grains.setval` always takes effect).  The minion keeps the layers
(`Grains`): `grains.refresh` recomputes all of them, and after a job that changed the grains file
only that layer is read again (`file_changed`, `reload_file`)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

from rx.minion.grains.custom import custom_grains, extmods_dir
from rx.minion.grains.hardware import hardware_grains
from rx.minion.grains.network import network_grains
from rx.minion.grains.osinfo import os_grains, read_release_files
from rx.minion.grains.system import osarch, system_grains
from rx.grainsfile import GRAINS_FILE, GrainsFileError, read_grains_file

log = logging.getLogger(__name__)

__all__ = ["Grains", "core_grains", "load_grains"]


def core_grains(minion_id: str, *, master: str = "", fqdns: bool = True) -> dict[str, Any]:
    """Every core grain of this host (`fqdns=False` skips the reverse lookups of the host's addresses)."""
    grains: dict[str, Any] = {"id": minion_id}
    if master:
        grains["master"] = master
    grains.update(system_grains())
    rel, lsb, centos = read_release_files()
    grains.update(os_grains(rel, lsb, centos, kernel=grains["kernel"]))
    grains["osarch"] = osarch(grains["os_family"], grains["cpuarch"])
    grains.update(hardware_grains())
    grains.update(network_grains(fqdns=fqdns))
    return grains


def _stamp(path: str | None) -> tuple[int, int, int] | None:
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


def _file_layer(path: str | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        return read_grains_file(path)
    except GrainsFileError as exc:
        log.warning("grains: %s; its grains are left out", exc)
        return {}


@dataclass
class Grains:
    """The minion's grains by layer (see the module doc); `merged()` is what functions and targets see."""

    core: dict[str, Any]
    custom: dict[str, Any] = field(default_factory=dict)
    file: dict[str, Any] = field(default_factory=dict)
    config: Mapping[str, Any] = field(default_factory=dict)
    file_path: str | None = None
    file_stamp: tuple[int, int, int] | None = None

    @classmethod
    def load(cls, minion_id: str, cfg: Any = None, *, static: Mapping[str, Any] | None = None) -> "Grains":
        """Compute every layer.  `cfg`: a MinionConfig (None: core grains only, as `rx-call --local`
        without a config); `static` replaces `cfg.grains` (a config re-read by `grains.refresh`)."""
        if cfg is None:
            return cls(core=core_grains(minion_id))
        core = core_grains(minion_id, master=cfg.master, fqdns=cfg.enable_fqdns_grains)
        dirs = [extmods_dir(cfg.cachedir)] if cfg.cachedir else []
        path = os.path.join(cfg.config_dir, GRAINS_FILE) if cfg.config_dir else None
        stamp = _stamp(path)
        return cls(core=core, custom=custom_grains(dirs, core), file=_file_layer(path),
                   config=dict(cfg.grains if static is None else static), file_path=path, file_stamp=stamp)

    def merged(self) -> dict[str, Any]:
        return {**self.core, **self.custom, **self.file, **self.config}

    def file_changed(self) -> bool:
        """True if the grains file is not the one last read (cheap: one stat)."""
        return self.file_path is not None and _stamp(self.file_path) != self.file_stamp

    def reload_file(self) -> None:
        self.file_stamp = _stamp(self.file_path)
        self.file = _file_layer(self.file_path)


def load_grains(minion_id: str, cfg: Any = None) -> dict[str, Any]:
    """The merged grains of this host for `minion_id` (see `Grains.load`)."""
    return Grains.load(minion_id, cfg).merged()
