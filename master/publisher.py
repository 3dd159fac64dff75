"""Publisher process: signed, sealed jobs from the MWorkers (publish_pull.ipc) out to every
minion (publish_port)."""

from __future__ import annotations

from rx.config import MasterConfig
from rx.transport.roles import devices, ipc_url, tcp_url


def main(cfg: MasterConfig) -> None:
    devices().publish_fanout(ipc_url(cfg.publish_pull_ipc), tcp_url(cfg.interface, cfg.publish_port))
