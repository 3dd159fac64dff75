"""The master's state, as interfaces: job store (jobs and returns), key store, grains store,
session store and replay guard.  Callers (MWorkers, maintenance, the service layer) see only
these protocols; `rx.master.store.open_stores` picks the implementation from the config
(`*_backend` settings), so a PostgreSQL job store or a Redis session store slots in without
touching a caller.

Every method is a coroutine: a backend that talks to a server awaits it, and the local
backends keep their short operations inline and move anything that can wait on a lock or
walk many files to a thread, so a worker's event loop never stalls on storage.
"""

from __future__ import annotations

import fnmatch
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Hashable, Protocol, Sequence

from rx.transport.keyprint import fingerprint
from rx.transport.errors import ProtocolError
from rx.transport.fields import as_map, get, str_list
from rx.transport.messages import Job
from rx.master.store.errors import JobExists, KeyStoreError, NotExpected, StoreError, UnknownJob

KEY_STATES = ("accepted", "pending", "rejected", "denied")
EXPECTED_CACHE_JOBS = 256
EXPECTED_CACHE_IDS = 100_000
"""Bounds of a process's ExpectedCache: at most this many jobs and this many expected ids in all
(~10 MB); a job beyond them is read again from its record when it is next needed."""
PROBE_FUNS = ("jobs.find",)
"""The clients' own find_job probes: stored compactly, expire fast, not listed as jobs."""
PROBE_KEEP_SECONDS = 120.0
"""A probe's answers are read live by the client that sent it; its record is kept this long for late answers."""


@dataclass(frozen=True)
class JobRecord:
    """A published job as stored: the job, the minions expected to return, and those expected only
    because the master had no grains cached for them."""

    job: Job
    minions: list[str]
    no_grains: list[str] = field(default_factory=list)

    def to_wire(self) -> dict:
        return {"load": self.job.to_wire(), "minions": self.minions, "no_grains": self.no_grains}

    @classmethod
    def from_wire(cls, obj: Any) -> "JobRecord":
        d = as_map(obj, "job record")
        return cls(Job.from_wire(get(d, "load", dict)), str_list(d, "minions"), str_list(d, "no_grains", default=[]))


@dataclass(frozen=True)
class JobTarget:
    """What a job targeted (nodegroups already expanded), and the minions expected to return."""

    tgt: str | list
    tgt_type: str
    delimiter: str
    minions: frozenset[str]

    @classmethod
    def of(cls, record: JobRecord) -> "JobTarget":
        job = record.job
        return cls(job.tgt, job.tgt_type, job.delimiter, frozenset(record.minions))


async def expected_rows(check: Callable[[str, str, bool], Awaitable[None]], rows: Sequence[tuple[str, str, dict]]
                        ) -> tuple[list[bool | StoreError], dict[tuple[str, str], tuple[int, dict]]]:
    """store_returns' first step in every backend: each row checked by `check(jid, id, True)` (a backend's
    store_return checks).  Returns the answers so far (the StoreError of a refused row, False elsewhere)
    and the rows to write, {(jid, id): (index, data)} (a second copy of a row in the batch stays False: a
    duplicate)."""
    out: list[bool | StoreError] = []
    todo: dict[tuple[str, str], tuple[int, dict]] = {}
    for jid, minion_id, data in rows:
        try:
            await check(jid, minion_id, True)
        except StoreError as exc:
            out.append(exc)
            continue
        todo.setdefault((jid, minion_id), (len(out), data))
        out.append(False)
    return out, todo


class ExpectedCache:
    """Each job's JobTarget, per process and bounded (LRU), with the version of the record it was read
    from (a backend's cheap stamp: a purged and re-created jid is a new version), so that checking that
    a job targeted a return's minion is a dict and a set lookup."""

    def __init__(self, max_jobs: int = EXPECTED_CACHE_JOBS, max_ids: int = EXPECTED_CACHE_IDS) -> None:
        self.max_jobs, self.max_ids = max_jobs, max_ids
        self._jobs: OrderedDict[str, tuple[JobTarget, Hashable]] = OrderedDict()
        self._ids = 0

    def get(self, jid: str) -> tuple[JobTarget, Hashable] | None:
        """(target, version) of a cached job, or None."""
        entry = self._jobs.get(jid)
        if entry is not None:
            self._jobs.move_to_end(jid)
        return entry

    def put(self, jid: str, target: JobTarget, version: Hashable) -> None:
        old = self._jobs.pop(jid, None)
        self._ids -= len(old[0].minions) if old else 0
        if len(target.minions) > self.max_ids:
            return
        self._jobs[jid] = (target, version)
        self._ids += len(target.minions)
        while len(self._jobs) > self.max_jobs or self._ids > self.max_ids:
            _jid, (dropped, _version) = self._jobs.popitem(last=False)
            self._ids -= len(dropped.minions)


@dataclass(frozen=True)
class Trimmed:
    """What trimming the job cache to its size bound did: its size before, the jobs removed, and the
    first jid kept (every job before it went)."""

    used: int
    removed: int
    first_kept: str


@dataclass(frozen=True)
class JobQuery:
    """Which jobs `JobStore.list_jobs` returns: every filter given must hold (Salt's jobs.list_jobs).
    `functions`, `targets`: globs (a job whose target is a list matches if one of its entries does);
    `users`: exact names; `start`/`end`: bounds of the job's start time (epoch seconds, inclusive);
    `limit`: at most this many, newest first (0: all).  The clients' probes are never listed."""

    functions: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    start: float | None = None
    end: float | None = None
    limit: int = 0

    def matches(self, record: "JobRecord") -> bool:
        """The one definition of a match, used by every backend after its own coarse filter."""
        job = record.job
        if job.fun in PROBE_FUNS:
            return False
        if self.start is not None and job.ts < self.start or self.end is not None and job.ts > self.end:
            return False
        if self.users and job.user not in self.users:
            return False
        funs = job.fun if isinstance(job.fun, list) else [job.fun]
        if self.functions and not any(fnmatch.fnmatchcase(f, g) for f in funs for g in self.functions):
            return False
        tgts = [str(t) for t in job.tgt] if isinstance(job.tgt, list) else [str(job.tgt)]
        return not self.targets or any(fnmatch.fnmatchcase(t, g) for t in tgts for g in self.targets)


@dataclass(frozen=True)
class KeyInfo:
    id: str
    state: str
    public: bytes

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public)


@dataclass(frozen=True)
class Decision:
    """What an `_auth` from (id, key) gets: its status, and the pending keys evicted to file it."""

    status: str
    evicted: tuple[KeyInfo, ...] = ()


@dataclass(frozen=True)
class SessionKeys:
    """The master's session secret and key serial: every publish and request key derives from them."""

    secret: bytes
    serial: int
    publish_key: bytes
    created: float
    """when this serial took effect (for scheduled rotation)"""


class JobStore(Protocol):
    async def prepare(self) -> None:
        """Create what the store needs (directories, tables)."""

    async def create_job(self, record: JobRecord) -> None:
        """Store a new job; JobExists if its jid is taken."""

    async def get_job(self, jid: str) -> JobRecord:
        """UnknownJob if there is no such job."""

    async def store_return(self, jid: str, minion_id: str, data: dict, *, expected_only: bool = True) -> bool:
        """Store a minion's return once: False if one is already stored for (jid, id); UnknownJob;
        StoreUnavailable when it cannot be stored now (the minion retries).
        NotExpected (carrying the job's JobTarget) if the minion is not in the job's expected set, unless
        `expected_only` is false (the caller found that the minion may match the target after all).
        The check costs no extra store round trip: the job's expected set is cached per process."""

    async def store_returns(self, rows: Sequence[tuple[str, str, dict]]) -> list[bool | StoreError]:
        """Several `(jid, id, data)` returns, each checked as store_return checks it (expected minions only) and
        stored in one write: per row True (stored), False (one was already stored), or the StoreError
        store_return would have raised for it (NotExpected, UnknownJob, StoreUnavailable...).  Raises
        StoreUnavailable when the write itself fails (none of them is stored then)."""

    async def returns(self, jid: str) -> dict[str, dict]:
        """`{id: return data}` stored for a job; UnknownJob."""

    async def has_return(self, jid: str, minion_id: str) -> bool: ...

    async def jids(self, since: str = "") -> list[str]:
        """Job ids >= `since` (jids are time-ordered), oldest first."""

    async def list_jobs(self, query: JobQuery) -> list[JobRecord]:
        """The records of the jobs `query` matches, newest first (a record that cannot be read is skipped)."""

    async def purge(self, before: str) -> int:
        """Remove jobs whose jid sorts before `before`, in small batches (a return is never held up for
        long); returns how many."""

    async def expire_probes(self, older_than: float) -> int:
        """Remove the probes sent before `older_than` (a time) and their answers; returns how many."""

    async def usage(self) -> int:
        """Bytes the job cache takes (what its size bound counts)."""

    async def trim(self, max_bytes: int) -> Trimmed | None:
        """Remove the oldest jobs if the cache takes more than `max_bytes`; None if it does not."""

    async def check(self) -> list[str]:
        """Notice the store's files deleted or replaced under it (and recover); what was lost, reported once."""

    async def flush(self) -> None:
        """Called about once a second by each worker: write the job records that could not be written when
        their jobs were published (a full disk), and notice a deleted database even while no request comes."""

    async def aclose(self) -> None:
        """Close, from inside the event loop that used the store (a server's connection pool is closed in it)."""

    def close(self) -> None: ...


class ReplayGuard(Protocol):
    async def first_use(self, nonce: bytes, now: float) -> bool:
        """True the first time a nonce is presented, False for a replay (across every worker)."""

    async def forget(self, older_than: float) -> None:
        """Drop nonces older than the freshness window (a message that old is refused as stale anyway)."""

    def close(self) -> None: ...


class KeyStore(Protocol):
    async def prepare(self) -> None:
        """Create what the store needs (directories, tables)."""

    async def read(self, state: str, minion_id: str) -> bytes | None: ...

    async def is_accepted(self, minion_id: str) -> bool: ...

    async def write(self, state: str, minion_id: str, public: bytes) -> None: ...

    async def remove(self, state: str, minion_id: str) -> bool: ...

    async def ids(self, state: str) -> list[str]: ...

    async def find(self, pattern: str, states: tuple[str, ...] = KEY_STATES) -> list[KeyInfo]:
        """Keys whose id matches the glob `pattern`, in the given states."""

    async def move(self, info: KeyInfo, to_state: str) -> None: ...

    async def decide(self, minion_id: str, public: bytes, auto_accept: bool, max_pending: int = 0) -> Decision:
        """What an `_auth` from (id, key) gets, filing unknown keys as pending (or accepted with
        `auto_accept`), atomically: of two different keys for one new id, one wins and the other is
        denied.  At most `max_pending` keys stay pending (0: no limit); the oldest make room."""

    async def accepted_version(self) -> Hashable:
        """A value that changes whenever the set of accepted keys changes (cheap to ask)."""

    async def master_public(self) -> bytes | None:
        """The master's own public key (what minions pin), if it has one yet."""


class GrainsStore(Protocol):
    async def store(self, minion_id: str, grains: dict) -> None: ...

    async def get(self, minion_id: str) -> dict | None: ...

    async def get_many(self, ids: list[str]) -> dict[str, dict | None]: ...

    async def remove(self, minion_id: str) -> None: ...


class SessionStore(Protocol):
    async def prepare(self) -> None:
        """Create the session secret if there is none."""

    async def current(self) -> SessionKeys:
        """The session in force (cheap: re-read only when another process changed it)."""

    async def rotate(self) -> SessionKeys:
        """Advance the serial: every publish and request key changes, minions re-authenticate."""


@dataclass(frozen=True)
class TokenRecord:
    """An eauth token as stored: whose it is (user, back end, OS groups at login), when it was made and when
    it expires (epoch seconds), and where the login came from."""

    token: str
    user: str
    eauth: str
    start: float
    expire: float
    groups: tuple[str, ...] = ()
    source: str = ""

    def to_wire(self) -> dict:
        return {"token": self.token, "user": self.user, "eauth": self.eauth, "start": self.start,
                "expire": self.expire, "groups": list(self.groups), "source": self.source}

    @classmethod
    def from_wire(cls, obj: Any) -> "TokenRecord":
        d = as_map(obj, "token")
        return cls(get(d, "token", str), get(d, "user", str), get(d, "eauth", str), float(get(d, "start", (int, float))),
                   float(get(d, "expire", (int, float))), tuple(str_list(d, "groups", default=[])),
                   get(d, "source", str, default=""))


class TokenStore(Protocol):
    """Eauth tokens, and the failed-login counts behind login rate limiting (shared by every process that
    takes logins: the user socket's relay, rx-api)."""

    async def prepare(self) -> None:
        """Create what the store needs."""

    async def put(self, record: TokenRecord) -> None: ...

    async def get(self, token: str) -> TokenRecord | None:
        """The token's record (expired ones too: the caller judges), None if there is no such token."""

    async def remove(self, token: str) -> bool:
        """Revoke; True if there was such a token."""

    async def purge(self, now: float) -> int:
        """Remove the tokens expired at `now`; returns how many."""

    async def locked_until(self, keys: list[str], now: float) -> float:
        """The latest time until which one of `keys` (`user:...`, `source:...`) is locked out, 0 if none is."""

    async def note_failure(self, keys: list[str], now: float, window: float, limit: int, lockout: float) -> float:
        """Count a failed login against each key; a key with `limit` failures within `window` seconds is locked
        until `now + lockout`.  Returns the lock's end if one was set, else 0."""

    async def clear_failures(self, keys: list[str]) -> None: ...


def check_record(obj: Any) -> JobRecord:
    """A stored job record, or UnknownJob if it is not one (a corrupt record is not a job)."""
    try:
        return JobRecord.from_wire(obj)
    except ProtocolError as exc:
        raise UnknownJob(f"corrupt job record: {exc}") from None
