"""What an MWorker's handlers may use; nothing else reaches them."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

from rx.logsetup import RateLimitedLog
from rx.master.autosign import AutoSign
from rx.master.filerecv import FileRecv
from rx.master.fileserver import FileServer
from rx.master.heard import LocalPresence, Presence
from rx.master.metrics.process import WorkerMetrics
from rx.master.recentjobs import RecentJobs
from rx.master.store import Stores
from rx.transport.crypto import Identity
from rx.transport.errors import ErrorKind
from rx.transport.events import Event
from rx.transport.jidclock import JidClock
from rx.transport.replies import ErrorReply
from rx.transport.roles import EventSink, FrameSink
from rx.transport.secure import RequestKeys

if TYPE_CHECKING:
    from rx.master.pillar import PillarService
    from rx.master.services.auth import AuthService
    from rx.master.store.presence import PresenceStore

log = logging.getLogger("rx.master.handlers")


@dataclass(frozen=True)
class WorkerSettings:
    """The part of the master config a worker uses."""

    auto_accept: bool
    auth_window_seconds: float
    max_pending_keys: int
    publish_port: int
    nodegroups: Mapping[str, Any]
    private_publish_max: int = 0


@dataclass
class WorkerContext:
    identity: Identity
    stores: Stores
    root_key: str
    settings: WorkerSettings
    events: EventSink
    publisher: FrameSink
    jids: JidClock = field(default_factory=lambda: JidClock(None))
    """Allocates the jids of publish requests that bring none (rx.transport.jidclock)."""
    autosign: AutoSign = field(default_factory=lambda: AutoSign(""))
    """Ids pre-authorised by the operator (`autosign_file`); none by default."""
    presence: Presence = field(default_factory=LocalPresence)
    """When the master last opened a sealed request from each minion (shared by its workers): a client's
    `lookup` tells it which silent minions are alive (busy), not gone."""
    connections: "PresenceStore | None" = None
    """The publisher's report of the minions holding a live publish connection now: a `lookup` tells the
    client which silent minions are connected (no response) and which are not (not connected)."""
    files: FileServer | None = None
    """The file server (`file_roots`), for `_file_list`, `_file_hash` and `_serve_file`."""
    recv: FileRecv | None = None
    """Where pushed files go (`cp.push`, behind `file_recv`)."""
    pillar: "PillarService | None" = None
    """Compiles minions' pillars (`pillar_roots`) and keeps them for pillar targets; None: no pillar."""
    metrics: WorkerMetrics = field(default_factory=WorkerMetrics)
    """What this worker counts for /metrics (rx.master.metrics); in memory only unless given a directory."""
    auth: "AuthService | None" = None
    """Users who are not root: tokens, rights, the audit log (rx.master.access); None: only the root key."""
    request_keys: RequestKeys = field(default_factory=RequestKeys)
    """The minions' request keys this worker derived lately (rx.transport.secure)."""
    recent_jobs: RecentJobs = field(default_factory=RecentJobs)
    """The job records this worker read last, for the catch-up of reconnecting minions (rx.master.recentjobs)."""

    async def fire(self, event: Event) -> None:
        await self.events.fire(event.tag, event.to_wire())


class DropLog:
    """Logs what it is told (`what: why`), at most one line per `interval` seconds plus a count of the rest,
    so a flood cannot fill the log; with `traceback`, the line carries the exception being handled."""

    def __init__(self, what: str = "dropped request", past: str = "dropped", *, interval: float = 1.0,
                 level: int = logging.WARNING, traceback: bool = False) -> None:
        self._log = RateLimitedLog(log, interval, held=f"more {past}")
        self._format = what.replace("%", "%%") + ": %s"
        self.level, self.traceback = level, traceback

    def __call__(self, why: str) -> None:
        self._log(self.level, self._format, why, exc_info=self.traceback)


drop_log = DropLog()
evict_log = DropLog("evicted a pending key", "evicted")
store_log = DropLog("the job store failed; answering \"retry later\"", "failed", interval=10.0, level=logging.ERROR)
"""Store and disk faults: one line per 10 s per process, with the count of the others."""


def error(kind: ErrorKind, message: str) -> dict:
    return ErrorReply(kind, message).to_wire()


def unavailable(exc: Exception) -> dict:
    """The reply to a request the store or the disk failed (logged, rate-limited): the sender retries."""
    store_log(str(exc))
    return error(ErrorKind.UNAVAILABLE, "the master cannot use its store right now; retry later (see its log)")
