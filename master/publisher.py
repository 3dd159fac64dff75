"""Publisher process: signed, sealed jobs from the MWorkers (PULL publish_pull.ipc)
out to every minion (PUB on publish_port)."""

from __future__ import annotations

import zmq

from rx.config import MasterConfig
from rx.transport.channels import ipc, run_proxy, tcp_url


def main(cfg: MasterConfig) -> None:
    run_proxy(zmq.PULL, [ipc(cfg.publish_pull_ipc)], zmq.PUB, tcp_url(cfg.interface, cfg.publish_port))
