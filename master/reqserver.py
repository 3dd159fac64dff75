"""Request server process: ROUTER on ret_port (and the local master_req.ipc)
proxied to the MWorkers' DEALER on workers.ipc."""

from __future__ import annotations

import zmq

from rx.config import MasterConfig
from rx.transport.channels import ipc, run_proxy, tcp_url


def main(cfg: MasterConfig) -> None:
    run_proxy(zmq.ROUTER, [tcp_url(cfg.interface, cfg.ret_port), ipc(cfg.ret_ipc)], zmq.DEALER, ipc(cfg.workers_ipc))
