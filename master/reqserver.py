"""Request server process: two routers to the MWorkers.

The network (ret_port, minions) -> workers.ipc, and the local master_req.ipc (clients on this
host) -> workers_local.ipc.  Keeping them apart lets the workers accept `publish` only from the
local socket, so the root key never crosses the network.
"""

from __future__ import annotations

import threading

from rx.config import MasterConfig
from rx.transport.roles import devices, ipc_url, tcp_url


def main(cfg: MasterConfig) -> None:
    relays = devices()
    local = threading.Thread(target=relays.request_router, name="local-requests", daemon=True,
                             args=([ipc_url(cfg.ret_ipc)], ipc_url(cfg.workers_local_ipc)))
    local.start()
    relays.request_router([tcp_url(cfg.interface, cfg.ret_port)], ipc_url(cfg.workers_ipc), cfg.zmq_backlog)
