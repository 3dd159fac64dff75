"""The master's services: keys, jobs, events and minion status, as the CLIs (rx-key, rx-run,
the LocalClient) and the HTTP API use them.  They reach state only through the store
interfaces and the live master only through its local sockets; they never print or prompt."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rx.master.services.events import EventService, MasterNotRunning
from rx.master.services.jobs import JobService
from rx.master.services.keys import KeyService
from rx.master.services.status import StatusService
from rx.master.store import KeyStoreError, StoreError, Stores, UnknownJob, open_stores, store_config
from rx.master.store.base import KEY_STATES

__all__ = ["Services", "open_services", "MasterNotRunning", "StoreError", "UnknownJob", "KeyStoreError", "KEY_STATES"]


@dataclass
class Services:
    stores: Stores
    events: EventService
    keys: KeyService
    jobs: JobService
    status: StatusService

    def close(self) -> None:
        self.events.close()
        self.stores.close()


def open_services(cfg: Any) -> Services:
    """The services over the stores and the event bus a master config names."""
    stores = open_stores(store_config(cfg))
    events = EventService(cfg.event_pull_ipc, cfg.event_pub_ipc)
    return Services(stores=stores, events=events, keys=KeyService(stores, events), jobs=JobService(stores),
                    status=StatusService(stores))
