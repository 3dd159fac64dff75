"""Request server process: two proxies to the MWorkers.

ROUTER on ret_port (minions, the network) -> DEALER workers.ipc, and ROUTER on
the local master_req.ipc (clients on this host) -> DEALER workers_local.ipc.
Keeping them apart lets the workers accept `publish` only from the local
socket, so the root key never crosses the network.
"""

from __future__ import annotations

import threading

import zmq

from rx.config import MasterConfig
from rx.transport.channels import ipc, run_proxy, tcp_url


def main(cfg: MasterConfig) -> None:
    local = threading.Thread(target=run_proxy, name="local-requests", daemon=True,
                             args=(zmq.ROUTER, [ipc(cfg.ret_ipc)], zmq.DEALER, ipc(cfg.workers_local_ipc)))
    local.start()
    run_proxy(zmq.ROUTER, [tcp_url(cfg.interface, cfg.ret_port)], zmq.DEALER, ipc(cfg.workers_ipc))
