"""Gathering a job's returns: wait for them, ask the missing minions whether the job still runs
(a `jobs.find` probe), and decide when to stop.

The job store is the judge.  Returns come as events on the master's bus, but an event can be lost
(the event publisher was restarted) or late (a slow subscriber on a saturated host); so before
probing, and again before reporting a minion missing, the client reads the returns the store holds
for the missing minions (`lookup`, answered by the master) and takes those: a stored return is never
reported missing.  This costs one request to the master, and only when minions are missing.

Silence is not taken for absence while the job's path is busy.  The client probes only after
`timeout` seconds with no new return, and the probe's own gather waits `gather_job_timeout` seconds
after its latest answer.  A minion that did not answer the probe but that the master heard from while
the probe was out (the `lookup` says so) is alive and behind, not gone: a burst of clients queues
hundreds of jobs on each minion.  It is probed again after `timeout` seconds.

Every wait is bounded.  A probe's answers count only from the minions it asked (a minion cannot
answer for others, nor for itself when it was not asked).  Minions that keep saying "still
running", or that stay busy and silent, extend the wait by `timeout` per probe, up to `max_wait`
seconds after the gather started (never less than `timeout`); then they are reported as "still
running" or "no response".  So a gather ends within max(timeout, max_wait) seconds, plus the master's
answers to a probe or a lookup in flight.
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


@dataclass
class _Gather:
    jid: str
    expected: set[str]
    returned: set[str] = field(default_factory=set)
    answered_probe: set[str] = field(default_factory=set)
    running: set[str] = field(default_factory=set)
    busy: set[str] = field(default_factory=set)
    """Missing minions that did not answer the last probe but that the master heard from while it was out."""
    connected: set[str] | None = None
    """Missing minions the master says hold a live publish connection (None: it could not tell)."""
    probed_at: float = 0.0

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
                 gather_job_timeout: float, max_wait: float, expect_minions: bool,
                 from_cache: bool = False) -> AsyncIterator[dict]:
    """Yield returns as they come; `from_cache` first yields those stored before we subscribed."""
    state = _Gather(pub.jid, set(pub.minions))
    if from_cache:
        for minion_id, data in (await client._stored(pub.jid)).returns.items():
            for item in state.take(minion_id, data):
                yield item
    start = time.monotonic()
    deadline, ceiling = start + timeout, start + max(timeout, max_wait)
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
                got = await _events(sub, state, 0.001) + await _stored(client, state, after_probe=True)
                if not got and state.busy:
                    deadline = time.monotonic() + timeout
                    continue
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


def default_job_expire(timeout: float, gather_job_timeout: float, max_wait: float) -> float:
    """Seconds after its publication from which a gathered job expires (minions refuse it): the gather's
    `timeout` plus the wait for the probe's answers as `gather` bounds it (none when max_wait <= timeout).
    No minion that never answered is reported missing before then, and none starts the job after it."""
    return timeout + max(0.0, min(gather_job_timeout, max_wait - timeout))


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


async def _stored(client: "AsyncLocalClient", state: _Gather, after_probe: bool = False) -> list[dict]:
    """The returns of missing minions that the job store holds (their events were lost or are late).  After a
    probe, the silent ones the master heard from while it was out are `state.busy`."""
    stored = await client._stored(state.jid, sorted(state.pending))
    out: list[dict] = []
    for minion_id, data in stored.returns.items():
        out += state.take(minion_id, data)
    if stored.connected is not None:
        state.connected = set(stored.connected)
    if after_probe:
        since = time.monotonic() - state.probed_at
        state.busy = {m for m in state.pending - state.answered_probe if stored.heard.get(m, since + 1) <= since}
    return out


async def _probe(client: "AsyncLocalClient", state: _Gather, gather_job_timeout: float, ceiling: float) -> bool:
    """Ask the missing minions whether they still run the job; True if some do."""
    asked = sorted(state.pending)
    state.probed_at = time.monotonic()
    left = ceiling - state.probed_at
    answers = await client._probe(asked, "jobs.find", [state.jid], min(gather_job_timeout, left), max_wait=left)
    state.answered_probe |= answers.keys()
    state.running = set(running(answers, asked))
    return bool(state.running)


def _reason(minion_id: str, pub: Published, state: _Gather) -> str:
    if minion_id in state.running:
        return STILL_RUNNING
    if minion_id in pub.no_grains:
        return "no grains cached"
    if minion_id in state.answered_probe | state.busy:
        return "no response"
    if state.connected is not None and minion_id in state.connected:
        return "no response"  # connected but silent (hung, or too starved to answer): not "not connected"
    return "not connected"
