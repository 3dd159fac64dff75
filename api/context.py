"""What every rx-api handler may use, opened once per process: the master's config, its services over the
stores (keys, jobs, status, the event bus), the auth service (logins, tokens, rights, the audit log), the
runner registry, the metrics source, and rx-api's own counters for `/stats`.

Jobs are published for a user through `local(token, source)`: an AsyncLocalClient that sends the user's
token, so the master's worker decides (AuthService.authorize_publish, the one choke point); all of them
share this process's event bus and its one zmq context.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rx.client.local import AsyncLocalClient
from rx.client.runner import AsyncRunnerClient
from rx.config import MasterConfig
from rx.master.services import Services, open_services
from rx.master.services.auth import AuthService, open_auth
from rx.master.services.presence import PresenceService

STATIC_DIR = Path(__file__).resolve().parent / "static"
"""The dashboard's files (api/static): `GET /` with `Accept: text/html` serves its index.html, `/static/<path>`
the rest."""


@dataclass
class ApiStats:
    """rx-api's counters since it started (`GET /stats`)."""

    started: float = field(default_factory=time.time)
    requests: int = 0
    current: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    by_status: Counter = field(default_factory=Counter)
    by_client: Counter = field(default_factory=Counter)
    logins: Counter = field(default_factory=Counter)

    def report(self) -> dict[str, Any]:
        return {"Uptime": round(time.time() - self.started, 3), "Requests": self.requests,
                "Current Requests": self.current, "Bytes Read": self.bytes_read, "Bytes Written": self.bytes_written,
                "Requests by status": {str(k): v for k, v in sorted(self.by_status.items())},
                "Requests by client": dict(sorted(self.by_client.items())),
                "Logins": dict(sorted(self.logins.items()))}


class ApiContext:
    def __init__(self, cfg: MasterConfig, services: Services, auth: AuthService, *,
                 static_dir: Path = STATIC_DIR) -> None:
        self.cfg = cfg
        self.services = services
        self.auth = auth
        self.runners = AsyncRunnerClient(cfg)
        self.presence = PresenceService(cfg.sock_dir)
        self.stats = ApiStats()
        self.static_dir = static_dir
        self.enabled = frozenset(cfg.api_enable_clients)
        self._metrics: Any = None

    def local(self, token: str, source: str) -> AsyncLocalClient:
        """A LocalClient acting for the token's user, from `source` (the HTTP client's address)."""
        return AsyncLocalClient(cfg=self.cfg, token=token, source=source, events=self.services.events)

    @property
    def metrics(self) -> Any:
        """The Prometheus exposition of this master (rx.master.metrics.exposition), loaded on first use."""
        if self._metrics is None:
            from rx.master.metrics.exposition import MetricsSource
            self._metrics = MetricsSource(self.cfg, keys=self.services.stores.keys)
        return self._metrics

    async def aclose(self) -> None:
        if self._metrics is not None:
            self._metrics.close()
            self._metrics = None
        if self.auth.audit_log is not None:
            self.auth.audit_log.close()
        self.services.close()


def open_context(cfg: MasterConfig, *, static_dir: Path = STATIC_DIR) -> ApiContext:
    """The context of an rx-api serving the master `cfg` describes (opens its stores)."""
    services = open_services(cfg)
    return ApiContext(cfg, services, open_auth(cfg, services.stores), static_dir=static_dir)
