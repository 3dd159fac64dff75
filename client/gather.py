"""Gathering a job's returns: wait for them, ask the missing minions whether the job still runs
(a `jobs.find` probe), and decide when to stop.

Every wait is bounded.  A probe's answers count only from the minions it asked (a minion cannot
answer for others, nor for itself when it was not asked).  Minions that keep saying "still
running" extend the wait by `timeout` per probe, up to `max_wait` seconds after the gather started
(never less than `timeout`); then they are reported as "still running".  So a gather ends within
max(timeout, max_wait) seconds, plus the publish round trip of a probe in flight (bounded by the
client's request and subscription timeouts).
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
    expected: set[str]
    returned: set[str] = field(default_factory=set)
    answered_probe: set[str] = field(default_factory=set)
    running: set[str] = field(default_factory=set)


def running(answers: dict[str, Any], probed: set[str] | list[str]) -> dict[str, dict]:
    """The `jobs.find` answers of probed minions that say the job is still running (a non-empty job info)."""
    return {m: r for m, r in answers.items() if m in probed and isinstance(r, dict) and r}


async def gather(client: "AsyncLocalClient", sub: "EventSource", pub: Published, *, timeout: float,
                 gather_job_timeout: float, max_wait: float, expect_minions: bool,
                 from_cache: bool = False) -> AsyncIterator[dict]:
    """Yield returns as they come; `from_cache` first yields those stored before we subscribed."""
    # imported here, after the publish: it loads while the minions run the job, off the ping's path
    from rx.transport.events import JobRetEvent
    state = _Gather(expected=set(pub.minions))
    for minion_id, data in (await client._cached_returns(pub.jid) if from_cache else {}).items():
        state.returned.add(minion_id)
        yield {minion_id: as_return(pub.jid, data)}
    pending = state.expected - state.returned
    start = time.monotonic()
    deadline, ceiling = start + timeout, start + max(timeout, max_wait)
    giving_up = False
    while pending and not giving_up:
        now = time.monotonic()
        if now >= ceiling:
            break
        if now < deadline:
            queued = await sub.batch(min(deadline, ceiling) - now)
        else:
            queued = await sub.batch(0.001)  # returns that came in meanwhile count before any probe
            if not queued:
                giving_up = True
                if gather_job_timeout > 0:
                    asked = sorted(pending)
                    answers = await client._probe(asked, "jobs.find", [pub.jid], min(gather_job_timeout, ceiling - now))
                    state.answered_probe |= answers.keys()
                    state.running = set(running(answers, asked))
                    giving_up = not state.running
                    deadline = time.monotonic() + timeout
                queued = await sub.batch(0.001)  # and those that came in during the probe
        for _tag, data in queued:
            try:
                minion_id = JobRetEvent.from_wire(data).id
            except ProtocolError:
                continue
            if minion_id in state.returned:
                continue
            state.returned.add(minion_id)
            state.expected.add(minion_id)
            pending.discard(minion_id)
            yield {minion_id: as_return(pub.jid, data)}
    if expect_minions:
        for mid in sorted(state.expected - state.returned):
            yield {mid: Missing(mid, _reason(mid, pub, state)).as_return(pub.jid)}


def default_job_expire(timeout: float, gather_job_timeout: float, max_wait: float) -> float:
    """Seconds after its publication from which a gathered job expires (minions refuse it): the gather's
    `timeout` plus the wait for the probe's answers as `gather` bounds it (none when max_wait <= timeout).
    No minion that never answered is reported missing before then, and none starts the job after it."""
    return timeout + max(0.0, min(gather_job_timeout, max_wait - timeout))


def _reason(minion_id: str, pub: Published, state: _Gather) -> str:
    if minion_id in state.running:
        return STILL_RUNNING
    if minion_id in pub.no_grains:
        return "no grains cached"
    return "no response" if minion_id in state.answered_probe else "not connected"
