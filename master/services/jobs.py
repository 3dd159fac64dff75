"""Jobs as a service: list them, look up their returns (what rx-run, the LocalClient and the API
call), through the job store interface only."""

from __future__ import annotations

from typing import Any

from rx.master.store import PROBE_FUNS, JobRecord, ReturnsLost, StoreError, Stores

INTERNAL_FUNS = PROBE_FUNS
"""The clients' own find_job probes: not listed as jobs."""


class JobService:
    def __init__(self, stores: Stores) -> None:
        self.stores = stores

    async def list_jobs(self, *, include_internal: bool = False) -> dict[str, dict[str, Any]]:
        """`{jid: {fun, target, minions}}` of every job kept, oldest first."""
        out: dict[str, dict[str, Any]] = {}
        for jid in await self.stores.jobs.jids():
            try:
                record = await self.stores.jobs.get_job(jid)
            except StoreError:  # a job purged or half-written meanwhile is not listed
                continue
            if record.job.fun in INTERNAL_FUNS and not include_internal:
                continue
            out[jid] = {"fun": record.job.fun, "target": record.job.tgt, "minions": len(record.minions)}
        return out

    async def job(self, jid: str) -> JobRecord:
        """UnknownJob if there is no such job."""
        return await self.stores.jobs.get_job(jid)

    async def returns(self, jid: str) -> dict[str, dict]:
        """Full stored returns `{id: {return, retcode, success, ...}}`; UnknownJob."""
        return await self.stores.jobs.returns(jid)

    async def lookup_jid(self, jid: str) -> dict[str, Any]:
        """`{id: return value}` as Salt's jobs.lookup_jid shows it; UnknownJob; ReturnsLost (its `partial`
        in this shape) when the returns database was re-created after the job was published."""
        try:
            returns = await self.returns(jid)
        except ReturnsLost as exc:
            raise ReturnsLost(jid, exc.lost_before, {mid: r.get("return") for mid, r in exc.partial.items()}) from None
        return {mid: r.get("return") for mid, r in returns.items()}
