"""The master's services: keys, jobs, events and minion status, as the CLIs (rx-key, rx-run,
the LocalClient) and the HTTP API use them.  They reach state only through the store
interfaces and the live master only through its local sockets; they never print or prompt.

Importing this package is cheap (the CLI's hot path needs only the event service); the stores and
the other services load in `open_services`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rx.master.services.events import EventService, MasterNotRunning
from rx.master.store.errors import KeyStoreError, ReturnsLost, StoreError, UnknownJob

if TYPE_CHECKING:
    from rx.master.services.jobs import JobService
    from rx.master.store.base import JobQuery
    from rx.master.services.keys import KeyService
    from rx.master.services.status import StatusService
    from rx.master.store import Stores

__all__ = ["Services", "open_services", "event_service", "MasterNotRunning", "StoreError", "UnknownJob",
           "KeyStoreError", "ReturnsLost", "JobQuery"]


def __getattr__(name: str) -> Any:
    """`JobQuery` on first use: the store interfaces are not on a client's path."""
    if name == "JobQuery":
        from rx.master.store.base import JobQuery
        return JobQuery
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Services:
    """The stores and every service over them."""

    def __init__(self, stores: "Stores", events: EventService) -> None:
        from rx.master.services.jobs import JobService
        from rx.master.services.keys import KeyService
        from rx.master.services.status import StatusService
        self.stores = stores
        self.events = events
        self.keys: KeyService = KeyService(stores, events)
        self.jobs: JobService = JobService(stores)
        self.status: StatusService = StatusService(stores)

    def close(self) -> None:
        self.events.close()
        self.stores.close()


def event_service(cfg: Any) -> EventService:
    """The master's event bus alone (cheap: opens no store)."""
    return EventService(cfg.event_pull_ipc, cfg.event_pub_ipc)


def open_services(cfg: Any, events: EventService | None = None) -> Services:
    """The services over the stores and the event bus a master config names (`events`: one already open)."""
    from rx.master.store import open_stores, store_config
    return Services(open_stores(store_config(cfg)), events or event_service(cfg))
