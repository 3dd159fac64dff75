"""Event publisher process: the master's local event bus (master_event_pull.ipc ->
master_event_pub.ipc, both in the 0700 sock_dir)."""

from __future__ import annotations

from rx.config import MasterConfig
from rx.transport.roles import devices, ipc_url


def main(cfg: MasterConfig) -> None:
    devices().event_relay(ipc_url(cfg.event_pull_ipc), ipc_url(cfg.event_pub_ipc))
