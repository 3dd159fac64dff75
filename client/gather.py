"""Gathering a job's returns: wait for them, ask the missing minions whether the job still runs
(a `jobs.find` probe), and decide when to stop.

The job store is the judge.  Returns come as events on the master's bus, but an event can be lost
(the event publisher was restarted) or late (a slow subscriber on a saturated host); so before
probing, and again before reporting a minion missing, the client reads the returns the store holds
for the missing minions (`lookup`, answered by the master) and takes those: a stored return is never
reported missing.  This costs one request to the master, and only when minions are missing.

Silence is not taken for absence while the job's path is busy: the client probes only after
`timeout` seconds with no new return, and no sooner than PATIENCE times as long as the master took to
answer this job's requests (a burst of clients makes the master, and so the minions' answers, slow);
the probe's own gather waits the same way for its answers.

Every wait is bounded.  A probe's answers count only from the minions it asked (a minion cannot
answer for others, nor for itself when it was not asked).  Minions that keep saying "still
running" extend the wait by `timeout` per probe, up to `max_wait` seconds after the gather started
(never less than `timeout`); then they are reported as "still running".  So a gather ends within
max(timeout, max_wait) seconds, plus the master's answers to a probe or a lookup in flight.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, AsyncIterator

from rx.client.results import STILL_RUNNING, Missing, Published, as_return
from rx.transport.errors import ProtocolError

if TYPE_CHECKING:
    from rx.client.local import AsyncLocalClient
    from rx.transport.roles import EventSource

DEFAULT_GATHER_JOB_TIMEOUT = 3.0
PATIENCE = 4.0
"""A gather waits at least this many times as long as the master took to answer the job's requests."""


@dataclass
class _Gather:
    jid: str
    expected: set[str]
    returned: set[str] = field(default_factory=set)
    answered_probe: set[str] = field(default_factory=set)
    running: set[str] = field(default_factory=set)

    @property
    def pending(self) -> set[str]:
        return self.expected - self.returned

    def take(self, minion_id: str, data: dict) -> list[dict]:
        """A return as the gather yields it ([] if this minion's return was taken already)."""
        if minion_id in self.returned:
            return []
        self.returned.add(minion_id)
        self.expected.add(minion_id)
        return [{minion_id: as_return(self.jid, data)}]


def running(answers: dict[str, Any], probed: set[str] | list[str]) -> dict[str, dict]:
    """The `jobs.find` answers of probed minions that say the job is still running (a non-empty job info)."""
    return {m: r for m, r in answers.items() if m in probed and isinstance(r, dict) and r}


async def gather(client: "AsyncLocalClient", sub: "EventSource", pub: Published, *, timeout: float,
                 gather_job_timeout: float, max_wait: float, expect_minions: bool, asked_at: float,
                 from_cache: bool = False) -> AsyncIterator[dict]:
    """Yield returns as they come; `from_cache` first yields those stored before we subscribed.  `asked_at`:
    when the job was asked for (time.monotonic), so the master's answers since count for PATIENCE."""
    state = _Gather(pub.jid, set(pub.minions))
    if from_cache:
        for minion_id, data in (await client._stored(pub.jid)).items():
            for item in state.take(minion_id, data):
                yield item
    start = time.monotonic()
    ceiling = start + max(timeout, max_wait)
    deadline = start + max(timeout, PATIENCE * client.slowest_answer(asked_at))
    judged = False  # the store was read last, with nothing new since
    while state.pending and (now := time.monotonic()) < ceiling:
        if now < deadline:
            got = await _events(sub, state, min(deadline, ceiling) - now)
        else:  # quiet for long enough: returns that came in meanwhile, then those in the store
            got = await _events(sub, state, 0.001) + await _stored(client, state)
            if not got and gather_job_timeout > 0:
                if await _probe(client, state, gather_job_timeout, ceiling):
                    deadline = time.monotonic() + timeout
                    continue
                got = await _events(sub, state, 0.001) + await _stored(client, state)
            judged = not got
            if not got:
                break
        for item in got:
            yield item
        if got:
            deadline = max(deadline, time.monotonic() + timeout)
    if state.pending and not judged:
        for item in await _stored(client, state):
            yield item
    if expect_minions:
        for mid in sorted(state.pending):
            yield {mid: Missing(mid, _reason(mid, pub, state)).as_return(pub.jid)}


async def _events(sub: "EventSource", state: _Gather, wait: float) -> list[dict]:
    """The returns among the events that come within `wait` seconds (one wake-up per burst)."""
    # imported here, after the publish: it loads while the minions run the job, off the ping's path
    from rx.transport.events import JobRetEvent
    out: list[dict] = []
    for _tag, data in await sub.batch(wait):
        try:
            minion_id = JobRetEvent.from_wire(data).id
        except ProtocolError:
            continue
        out += state.take(minion_id, data)
    return out


async def _stored(client: "AsyncLocalClient", state: _Gather) -> list[dict]:
    """The returns of missing minions that the job store holds (their events were lost or are late)."""
    out: list[dict] = []
    for minion_id, data in (await client._stored(state.jid, sorted(state.pending))).items():
        out += state.take(minion_id, data)
    return out


async def _probe(client: "AsyncLocalClient", state: _Gather, gather_job_timeout: float, ceiling: float) -> bool:
    """Ask the missing minions whether they still run the job; True if some do."""
    asked = sorted(state.pending)
    left = ceiling - time.monotonic()
    answers = await client._probe(asked, "jobs.find", [state.jid], min(gather_job_timeout, left), max_wait=left)
    state.answered_probe |= answers.keys()
    state.running = set(running(answers, asked))
    return bool(state.running)


def _reason(minion_id: str, pub: Published, state: _Gather) -> str:
    if minion_id in state.running:
        return STILL_RUNNING
    if minion_id in pub.no_grains:
        return "no grains cached"
    return "no response" if minion_id in state.answered_probe else "not connected"
