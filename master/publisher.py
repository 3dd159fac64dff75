"""Publisher process: signed, sealed jobs from the MWorkers (publish_pull.ipc) out to the minions
(publish_port), each under its topic; subscribers that ask for anything else are dropped."""

from __future__ import annotations

import logging

from rx.config import MasterConfig
from rx.logsetup import RateLimitedLog
from rx.transport.roles import devices, ipc_url, tcp_url

_drops = RateLimitedLog(logging.getLogger("rx.master.publisher"))


def main(cfg: MasterConfig) -> None:
    devices().publish_fanout(ipc_url(cfg.publish_pull_ipc), tcp_url(cfg.interface, cfg.publish_port),
                             lambda fmt, *args: _drops(logging.WARNING, fmt, *args))
