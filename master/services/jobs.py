"""Jobs as a service: list them, look up their returns (what rx-run, the LocalClient and the API
call), through the job store interface only.  Shapes are Salt's (`salt-run jobs.*`): a job is
`{Function, Arguments, Target, Target-type, User, StartTime, Minions}`; a return is the minion's
`{return, retcode, success, start_time, end_time}`."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

from rx.master.store import PROBE_FUNS, JobQuery, JobRecord, ReturnsLost, Stores

INTERNAL_FUNS = PROBE_FUNS
"""The clients' own find_job probes: not listed as jobs."""
NOT_RETURNED = "Minion did not return"
"""What jobs.lookup_jid shows, with missing=True, for an expected minion that did not return (Salt's words)."""
RETURN_FIELDS = ("return", "retcode", "success", "start_time", "end_time")


def start_time(ts: float) -> str:
    """A job's start time as Salt shows StartTime (`2024, Jan 02 03:04:05.060708`), in UTC."""
    return datetime.datetime.fromtimestamp(ts, tz=datetime.timezone.utc).strftime("%Y, %b %d %H:%M:%S.%f")


def job_info(record: JobRecord) -> dict[str, Any]:
    """Salt's fields of a job, and the minions expected to return."""
    job = record.job
    return {"Function": job.fun, "Arguments": list(job.arg) + ([dict(job.kwarg)] if job.kwarg else []),
            "Target": job.tgt, "Target-type": job.tgt_type, "User": job.user or "root",
            "StartTime": start_time(job.ts), "Minions": sorted(record.minions)}


class JobService:
    def __init__(self, stores: Stores) -> None:
        self.stores = stores

    async def list_jobs(self, query: JobQuery = JobQuery()) -> dict[str, dict[str, Any]]:
        """`{jid: job_info}` of the jobs the query matches, newest first."""
        return {r.job.jid: job_info(r) for r in await self.stores.jobs.list_jobs(query)}

    async def job(self, jid: str) -> JobRecord:
        """UnknownJob if there is no such job."""
        return await self.stores.jobs.get_job(jid)

    async def returns(self, jid: str) -> dict[str, dict]:
        """Full stored returns `{id: {return, retcode, success, ...}}`; UnknownJob."""
        return await self.stores.jobs.returns(jid)

    async def lookup_jid(self, jid: str, *, returned: bool = True, missing: bool = False) -> dict[str, Any]:
        """`{id: return value}` as Salt's jobs.lookup_jid shows it (with `missing`, each expected minion that
        did not return as NOT_RETURNED); UnknownJob; ReturnsLost (its `partial` in this shape) when the
        returns database was re-created after the job was published."""
        record = await self.job(jid) if missing else None
        try:
            stored = await self.returns(jid)
        except ReturnsLost as exc:
            raise ReturnsLost(jid, exc.lost_before, self._lookup(record, exc.partial, returned)) from None
        return self._lookup(record, stored, returned)

    @staticmethod
    def _lookup(record: JobRecord | None, stored: dict[str, dict], returned: bool) -> dict[str, Any]:
        out = {mid: r.get("return") for mid, r in sorted(stored.items())} if returned else {}
        for mid in sorted(record.minions) if record is not None else ():
            if mid not in stored:
                out[mid] = NOT_RETURNED
        return out

    async def print_job(self, jid: str) -> dict[str, Any]:
        """`{jid: {...job_info, Result: {id: return}}}` (Salt's jobs.print_job); UnknownJob."""
        record = await self.job(jid)
        try:
            stored = await self.returns(jid)
        except ReturnsLost as exc:
            stored = exc.partial
        result = {mid: {k: r[k] for k in RETURN_FIELDS if k in r} for mid, r in sorted(stored.items())}
        return {jid: {**job_info(record), "Result": result}}

    async def exit_success(self, jid: str) -> dict[str, bool]:
        """`{id: bool}` for every expected minion and every one that returned: True when it returned and its
        function succeeded (Salt looks only at whether the return is truthy; rx at `success` and `retcode`)."""
        record = await self.job(jid)
        try:
            stored = await self.returns(jid)
        except ReturnsLost as exc:
            stored = exc.partial
        out = {mid: False for mid in record.minions}
        for mid, r in stored.items():
            out[mid] = r.get("success") is True and r.get("retcode", 0) == 0
        return dict(sorted(out.items()))

    async def last_run(self, query: JobQuery = JobQuery()) -> dict[str, Any] | None:
        """print_job of the newest job the query matches, or None."""
        newest = await self.stores.jobs.list_jobs(dataclasses.replace(query, limit=1))
        return await self.print_job(newest[0].job.jid) if newest else None
