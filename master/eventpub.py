"""Event publisher process: the master's local event bus
(PULL master_event_pull.ipc -> PUB master_event_pub.ipc, both in the 0700 sock_dir)."""

from __future__ import annotations

import zmq

from rx.config import MasterConfig
from rx.transport.channels import ipc, run_proxy


def main(cfg: MasterConfig) -> None:
    run_proxy(zmq.PULL, [ipc(cfg.event_pull_ipc)], zmq.PUB, ipc(cfg.event_pub_ipc))
