"""Jobs in the master's job store: look up a job's returns, list the jobs kept.  Works whether or not
the master runs (it reads the job store through the job service)."""

from __future__ import annotations

from typing import Any

from rx.runners import BadRequest, RunnerContext
from rx.transport.ids import is_jid

__all__ = ["lookup_jid", "list_jobs"]


async def lookup_jid(ctx: RunnerContext, jid: Any) -> dict:
    """Return the stored returns of a job, `{minion: return}`.

    CLI example: rx-run jobs.lookup_jid 20261122051020123456
    """
    jid = str(jid)
    if not is_jid(jid):
        raise BadRequest(f"{jid[:64]!r} is not a job id (20 digits, as rx prints them)")
    return await ctx.services().jobs.lookup_jid(jid)


async def list_jobs(ctx: RunnerContext) -> dict:
    """Return the jobs kept in the job store, `{jid: {fun, target, minions}}`, oldest first.

    CLI example: rx-run jobs.list_jobs
    """
    return await ctx.services().jobs.list_jobs()
