"""What the master's own tools take from its file roots: the `_runners` files for rx-run's registry."""

from __future__ import annotations

import logging

from rx.config import MasterConfig

log = logging.getLogger(__name__)


def runner_files(cfg: MasterConfig) -> dict[str, str]:
    """`name.py` -> path of each `_runners/*.py` in the base environment's file roots (first root wins);
    {} when there is no base environment or no such directory."""
    from rx.master.fileserver import FileServer, FileServerError, file_server_settings
    try:
        return FileServer(file_server_settings(cfg)).special_files("runners")
    except (FileServerError, OSError) as exc:
        log.debug("no _runners from the file roots: %s", exc)
        return {}
