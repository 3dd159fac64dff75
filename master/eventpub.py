"""Event publisher process: the master's local event bus (master_event_pull.ipc ->
master_event_pub.ipc, both in the 0700 sock_dir).  With `metrics_event_drops`, it counts the events a
subscriber missed (rx_event_bus_dropped_total)."""

from __future__ import annotations

from rx.config import MasterConfig
from rx.master.metrics.process import EventBusMetrics
from rx.master.metrics.shared import metrics_dir
from rx.transport.roles import devices, ipc_url


def main(cfg: MasterConfig) -> None:
    dropped = EventBusMetrics(metrics_dir(cfg.sock_dir)).dropped if cfg.metrics_event_drops else None
    devices().event_relay(ipc_url(cfg.event_pull_ipc), ipc_url(cfg.event_pub_ipc), dropped)
