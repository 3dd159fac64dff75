"""The sealed `_call_return` command: a return `rx-call FUN` made on a minion host, filed as a job of
its own (a new jid, that minion its only target, user `rx-call`) with its return, and the job's
events fired, as for a published job.  The minion id is the one the request's key proved, so a
minion can file returns only for itself."""

from __future__ import annotations

import time

from rx.master.context import WorkerContext
from rx.master.store import JobRecord
from rx.transport.callmsgs import RX_CALL_USER, CallReply, CallReturn
from rx.transport.events import JobNewEvent, JobRetEvent
from rx.transport.ids import new_jid
from rx.transport.messages import Job, JobReturn


async def handle_call_return(ctx: WorkerContext, minion_id: str, call: CallReturn) -> dict:
    job = Job(jid=new_jid(), fun=call.fun, arg=call.arg, kwarg=call.kwarg, tgt=[minion_id], tgt_type="list",
              ts=time.time(), user=RX_CALL_USER)
    await ctx.stores.jobs.create_job(JobRecord(job, [minion_id]))
    await ctx.fire(JobNewEvent(job, [minion_id]))
    fun_args = list(call.arg) + ([call.kwarg] if call.kwarg else [])
    event = JobRetEvent(minion_id, JobReturn(jid=job.jid, fun=call.fun, fun_args=fun_args, retcode=call.retcode,
                                             success=call.success, ret=call.ret))
    data = event.to_wire()
    await ctx.stores.jobs.store_return(job.jid, minion_id, data)
    await ctx.events.fire(event.tag, data)
    return CallReply(job.jid).to_wire()
