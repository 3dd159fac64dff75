"""rx.minion.link.MasterLink.catch_up: after a (re)connection the minion asks for the jobs it missed, and asks
once more a few seconds later, because the publisher applies a new connection's subscription after the
handshake that reported it up: a job published in between is in neither the first answer nor the
subscription.  The subscriber and the master's answers are stand-ins here; the real path is measured by the
bench's master-restart step."""

from __future__ import annotations

import asyncio
import time

from rx.config import MinionConfig
from rx.minion import link as link_mod
from rx.minion.link import MasterLink
from rx.transport.crypto import Identity
from rx.transport.messages import Job
from rx.transport.roles import LinkEvent
from rx.transport.zmq_transport import ZmqTransport


class _Sub:
    """A subscriber whose link comes up once and stays up."""

    async def link_events(self):
        yield LinkEvent.CONNECTED
        await asyncio.Event().wait()


def _job(jid: str) -> Job:
    return Job(jid=jid, fun="test.ping", arg=[], kwarg={}, tgt="*", tgt_type="glob", ts=time.time())


async def _caught_up(answers: list[list[Job]]) -> tuple[list[str], list[float]]:
    transport = ZmqTransport()
    link = MasterLink(MinionConfig(id="web1"), Identity.generate(), transport)
    asked: list[float] = []
    ran: list[str] = []

    async def missed_jobs(since: float) -> list[Job]:
        asked.append(since)
        return answers[len(asked) - 1] if len(asked) <= len(answers) else []

    link.missed_jobs = missed_jobs  # type: ignore[method-assign]
    task = asyncio.get_running_loop().create_task(link.catch_up(_Sub(), lambda job: ran.append(job.jid)))
    try:
        async with asyncio.timeout(5):
            while len(asked) < len(answers):
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await link.aclose()
        transport.close()
    return ran, asked


def test_a_job_missing_from_the_first_answer_is_run_from_the_second(monkeypatch):
    monkeypatch.setattr(link_mod, "CATCH_UP_SPREAD", 0.0)
    monkeypatch.setattr(link_mod, "CATCH_UP_AGAIN", 0.05)
    ran, asked = asyncio.run(_caught_up([[], [_job("20261202000000000001")]]))
    assert ran == ["20261202000000000001"]
    assert len(asked) == 2 and asked[0] == asked[1], "both ask from the moment the link was lost"
