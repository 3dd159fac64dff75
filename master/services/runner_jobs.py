"""Jobs that did not come from a publish: runner jobs (`rx-run --async`) and the minion-made jobs of
`rx-call`, recorded in the job store like any job, so `jobs.lookup_jid` and `jobs.list_jobs` find
them and their return events reach the bus.

A runner job targets the master itself, under Salt's id for it, `<host>_master`; an rx-call job
targets the minion that ran it (the master's handler for `_call_return` records those).
"""

from __future__ import annotations

import socket
import time
from typing import Any

from rx.master.services.events import EventService
from rx.master.store import JobRecord, Stores
from rx.transport.events import JobNewEvent, JobRetEvent
from rx.transport.ids import new_jid, validate_minion_id
from rx.transport.messages import Job, JobReturn


def master_id() -> str:
    """The id a runner job's return is stored under: `<host>_master`, as Salt names it."""
    name = f"{socket.gethostname() or 'localhost'}_master"
    return name if validate_minion_id(name) is None else "master"


def plain(value: Any) -> Any:
    """A value the job store can keep: tuples and sets become lists, unknown types their repr."""
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return value
    if isinstance(value, dict):
        return {k if isinstance(k, str) else str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    return repr(value)


class RunnerJobs:
    def __init__(self, stores: Stores, events: EventService) -> None:
        self.stores = stores
        self.events = events
        self.id = master_id()

    async def start(self, fun: str, arg: list, kwarg: dict, user: str) -> Job:
        """Record a runner job about to run (fires rx/job/<jid>/new if the master runs)."""
        job = Job(jid=new_jid(), fun=fun, arg=plain(list(arg)), kwarg=plain(dict(kwarg)), tgt=[self.id],
                  tgt_type="list", ts=time.time(), user=user)
        await self.stores.jobs.create_job(JobRecord(job, [self.id]))
        await self.events.fire([JobNewEvent(job, [self.id])])
        return job

    async def finish(self, job: Job, value: Any, retcode: int) -> None:
        """Store the runner job's return (fires rx/job/<jid>/ret/<host>_master if the master runs)."""
        fun_args = list(job.arg) + ([job.kwarg] if job.kwarg else [])
        ret = JobReturn(jid=job.jid, fun=job.fun, fun_args=fun_args, retcode=retcode, success=retcode == 0,
                        ret=plain(value))
        event = JobRetEvent(self.id, ret)
        await self.stores.jobs.store_return(job.jid, self.id, event.to_wire())
        await self.events.fire([event])
