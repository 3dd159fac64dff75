"""The event hub without IO: ids, the replay window, who sees which event, and each client's bounded queue.

Every event from the master's bus becomes a `Record` with the next id (ids increase by one from a start
taken from the clock in microseconds, so the ids of a restarted rx-api are higher than the last run's).
The last `replay` records (at most RING_MAX_BYTES of them) stay for clients that reconnect with
`Last-Event-ID`.  Each client has a queue; a client whose queue outgrows `client_queue` records (or
CLIENT_MAX_BYTES) is dropped at once: its queue is emptied, its `hangup` called, the drop counted and logged
once.  Nothing a slow client does can slow the hub or another client.

Who sees what: events that are not about a job (keys, auth, minions' own events, hooks, rx-api's notices)
go to every authenticated client, as salt-api sends them.  A job's events (`rx/job/<jid>/...`: its
arguments and its returns, which may hold secrets) go to root, to users who may run the `jobs.lookup_jid`
runner (which reads any job's returns anyway), and to the job's owner (the job's `user`, as
rx.master.services.auth.Principal.owner names them); a return whose job rx-api did not see published
(before it started) goes only to the first two.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

from rx.api.events import wire
from rx.api.events.salttags import to_salt
from rx.transport.tags import JOB_PREFIX, job_new

log = logging.getLogger("rx.api.events")

RING_MAX_BYTES = 64 << 20
"""Bytes of encoded events the replay window keeps at most (big returns shorten it)."""
CLIENT_MAX_BYTES = 32 << 20
"""Bytes of encoded events one client may have waiting before it is dropped."""
MAX_CLIENTS = 1000
"""Streams one rx-api serves at once; one more is refused (503) rather than let memory grow without bound."""
MAX_CLIENTS_PER_USER = 50
"""Streams one user may hold at once (a dashboard tab holds one): one user cannot take every stream (and the
file descriptors behind them) from the others."""
OWNERS_MAX = 100_000
"""Jobs whose owner the hub remembers (to route their returns)."""
NOTICE_PREFIX = "rx/api/"
BUS_TAG = "rx/api/bus"
"""The master's bus was lost (`state: lost`) or is back (`state: back`): events in between were missed."""
GAP_TAG = "rx/api/gap"
"""Sent to a client whose Last-Event-ID is older than the replay window (or unknown): events were missed."""
CLOSED_TAG = "rx/api/closed"
"""The last thing a client gets when rx-api ends its stream (token expired or revoked, rx-api stopping)."""
NOTICES = (
    (BUS_TAG, "yes", "the master's bus was lost (`state: lost`: rx-master stopped or restarted) or is back "
                     "(`state: back`); events fired in between were missed. `state: down` (no id) greets a client "
                     "that connects while the bus is away"),
    (GAP_TAG, "no", "`Last-Event-ID` is older than the replay window, or not an id this rx-api sent: some events "
                    "were missed; everything still kept follows (`last_event_id`, `oldest`, `newest`)"),
    (CLOSED_TAG, "no", "rx-api ends the stream: the token expired or was revoked, or rx-api is stopping (`reason`)"),
)
"""rx-api's own events (tag, has an id, meaning): every client gets them, whatever its `tag` filter."""


class TooManyClients(Exception):
    """The hub already serves MAX_CLIENTS streams, or MAX_CLIENTS_PER_USER of this user's."""


@dataclass(eq=False)
class Record:
    """One event as clients get it: `tag`/`data` as presented (rx's, or Salt's with salt_event_tags), `blob`
    the JSON of both, `jid`/`owner` for the rights check.  `id` None: a notice for one client only."""

    id: int | None
    tag: str
    data: dict
    ts: float
    blob: bytes
    jid: str = ""
    owner: str | None = None
    notice: bool = False
    _sse: bytes | None = field(default=None, repr=False)

    @property
    def sse(self) -> bytes:
        """The server-sent event (made once, shared by every client)."""
        if self._sse is None:
            self._sse = wire.sse_frame(self.id, self.tag, self.blob)
        return self._sse

    @property
    def ws(self) -> str:
        return wire.ws_message(self.id, self.blob)

    @property
    def size(self) -> int:
        return len(self.blob) + len(self.tag) + 32


@dataclass(frozen=True)
class Access:
    """What one authenticated client may see: every job's events, or those of jobs `owner` published."""

    all_jobs: bool
    owner: str = ""

    def may_see(self, rec: Record) -> bool:
        return rec.notice or not rec.jid or self.all_jobs or (rec.owner is not None and rec.owner == self.owner)


class Client:
    """One stream's queue.  `notify` is called when the queue becomes non-empty (wake the writer), `hangup`
    once when the client is dropped."""

    def __init__(self, access: Access, prefixes: Sequence[str], limit: int, max_bytes: int,
                 notify: Callable[[], None], hangup: Callable[[], None]) -> None:
        self.access = access
        self.prefixes = tuple(prefixes)
        self.limit = limit
        self.max_bytes = max_bytes
        self.notify = notify
        self.hangup = hangup
        self.queue: deque[Record] = deque()
        self.bytes = 0
        self.dropped = False
        self.ended = ""
        self.delivered = 0

    def wants(self, rec: Record) -> bool:
        if rec.notice:
            return True
        if self.prefixes and not rec.tag.startswith(self.prefixes):
            return False
        return self.access.may_see(rec)

    def offer(self, rec: Record) -> bool:
        """Queue `rec` if this client wants it; False if that made the client too far behind (dropped)."""
        if self.dropped or not self.wants(rec):
            return True
        self.queue.append(rec)
        self.bytes += rec.size
        if len(self.queue) > self.limit or self.bytes > self.max_bytes:
            self.dropped = True
            self.queue.clear()
            self.bytes = 0
            return False
        if len(self.queue) == 1:
            self.notify()
        return True

    def end(self, reason: str) -> None:
        """Ask the writer to end this stream after what is queued (it sends `rx/api/closed` with `reason`)."""
        self.ended = reason
        self.notify()

    def take(self) -> list[Record]:
        """Everything queued, oldest first (the writer sends it as one write)."""
        out = list(self.queue)
        self.queue.clear()
        self.bytes = 0
        self.delivered += len(out)
        return out


def job_of(tag: str) -> str:
    """The jid of an rx job event's tag (`rx/job/<jid>/...`), else ''."""
    if not tag.startswith(JOB_PREFIX):
        return ""
    jid, sep, _rest = tag[len(JOB_PREFIX):].partition("/")
    return jid if sep else ""


class HubCore:
    """Ids, the replay window, the rights and the clients' queues (the bus loop is rx.api.events.hub)."""

    def __init__(self, *, replay: int = 5000, client_queue: int = 10000, salt_tags: bool = False,
                 first_id: int | None = None, ring_bytes: int = RING_MAX_BYTES,
                 client_bytes: int = CLIENT_MAX_BYTES, max_clients: int = MAX_CLIENTS,
                 max_per_user: int = MAX_CLIENTS_PER_USER) -> None:
        self.replay = replay
        self.client_queue = client_queue
        self.salt_tags = salt_tags
        self.next_id = first_id if first_id is not None else int(time.time() * 1_000_000)
        self.ring: deque[Record] = deque()
        self.ring_bytes = 0
        self.ring_max_bytes = ring_bytes
        self.client_bytes = client_bytes
        self.max_clients = max_clients
        self.max_per_user = max_per_user
        self.owners: OrderedDict[str, str] = OrderedDict()
        self.clients: tuple[Client, ...] = ()
        self.bus_up = False
        self.counts = {"events": 0, "dropped_clients": 0, "bus_lost": 0, "served": 0}

    # ------------------------------------------------------------ events in

    def ingest(self, events: Iterable[tuple[str, dict]], now: float) -> list[Record]:
        """Turn bus events into records: id, presentation, replay window, every client's queue."""
        out = []
        for tag, data in events:
            jid = job_of(tag)
            owner = None
            if jid:
                if tag == job_new(jid) and isinstance(data.get("user"), str):
                    owner = self._remember(jid, data["user"])
                else:
                    owner = self.owners.get(jid)
            shown_tag, shown = to_salt(tag, data, now) if self.salt_tags else (tag, data)
            out.append(self._add(Record(self.next_id, shown_tag, shown, now, wire.event_json(shown_tag, shown),
                                        jid, owner)))
        return out

    def notice(self, tag: str, data: dict, now: float) -> Record:
        """rx-api's own event (the bus lost or back): an id, kept for replay, sent to every client."""
        return self._add(Record(self.next_id, tag, data, now, wire.event_json(tag, data), notice=True))

    def _remember(self, jid: str, owner: str) -> str:
        self.owners[jid] = owner
        if len(self.owners) > OWNERS_MAX:
            self.owners.popitem(last=False)
        return owner

    def _add(self, rec: Record) -> Record:
        self.next_id += 1
        self.counts["events"] += 1
        if self.replay:
            self.ring.append(rec)
            self.ring_bytes += rec.size
            while len(self.ring) > self.replay or (self.ring_bytes > self.ring_max_bytes and len(self.ring) > 1):
                self.ring_bytes -= self.ring.popleft().size
        for client in self.clients:
            if not client.offer(rec):
                self._drop(client)
        return rec

    def _drop(self, client: Client) -> None:
        self.counts["dropped_clients"] += 1
        log.warning("rx-api events: dropped a client that does not read its stream (over api_event_client_queue "
                    "%d events or %d MiB waiting); %d dropped so far", self.client_queue, self.client_bytes >> 20,
                    self.counts["dropped_clients"])
        self.detach(client)
        client.hangup()

    # ------------------------------------------------------------ clients

    @property
    def newest_id(self) -> int:
        return self.next_id - 1

    def attach(self, access: Access, prefixes: Sequence[str], last_id: int | None, notify: Callable[[], None],
               hangup: Callable[[], None], now: float | None = None) -> tuple[Client, list[Record]]:
        """A new client, and what it gets before the live events: a gap notice if `last_id` is not in the
        window, the records after `last_id` it may see, a notice if the bus is down.  TooManyClients when
        `max_clients` streams, or `max_per_user` of this user's, are open."""
        self.room(access)
        client = Client(access, prefixes, self.client_queue, self.client_bytes, notify, hangup)
        now = time.time() if now is None else now
        first: list[Record] = []
        if last_id is not None:
            oldest = self.ring[0].id if self.ring else self.next_id
            assert oldest is not None
            if not oldest - 1 <= last_id <= self.newest_id:
                first.append(self._one_off(GAP_TAG, {
                    "last_event_id": last_id, "oldest": oldest if self.ring else None, "newest": self.newest_id,
                    "message": "events after Last-Event-ID are no longer kept (or the id is not one of this "
                               "rx-api's): some were missed; what is kept follows"}, now))
                last_id = oldest - 1
            first.extend(r for r in self.ring if r.id is not None and r.id > last_id and client.wants(r))
        if not self.bus_up:
            first.append(self._one_off(BUS_TAG, {"state": "down", "message": "the master's event bus is not "
                                                 "reachable (is rx-master running?); rx-api keeps trying"}, now))
        client.delivered = len(first)
        self.clients = (*self.clients, client)
        self.counts["served"] += 1
        return client, first

    def room(self, access: Access) -> None:
        """TooManyClients unless one more stream may open for this user."""
        if len(self.clients) >= self.max_clients:
            raise TooManyClients(f"rx-api serves {self.max_clients} event streams already; try again later")
        if sum(c.access.owner == access.owner for c in self.clients) >= self.max_per_user:
            raise TooManyClients(f"{access.owner} has {self.max_per_user} event streams open already: close one")

    def detach(self, client: Client) -> None:
        self.clients = tuple(c for c in self.clients if c is not client)

    def _one_off(self, tag: str, data: dict, now: float) -> Record:
        return Record(None, tag, data, now, wire.event_json(tag, data), notice=True)

    def closing(self, reason: str, now: float | None = None) -> Record:
        """The notice a stream ends with."""
        return self._one_off(CLOSED_TAG, {"reason": reason}, time.time() if now is None else now)

    def stats(self) -> dict:
        """Counters for /stats and the logs: clients now, events, dropped clients, bus losses, replay kept."""
        return {**self.counts, "clients": len(self.clients), "replay_kept": len(self.ring),
                "bus": "up" if self.bus_up else "down", "newest_id": self.newest_id}
