"""rx.master.recentjobs: a worker reads a recent job record once for a storm of `_missed` requests."""

from __future__ import annotations

import pytest

from rx.master.recentjobs import RecentJobs
from rx.master.store import JobRecord, StoreError
from rx.transport.messages import Job


def _record(jid: str, minions: list[str]) -> JobRecord:
    return JobRecord(Job(jid=jid, fun="test.ping", arg=[], kwarg={}, tgt="*", tgt_type="glob", ts=0.0), minions)


class Store:
    def __init__(self, records: dict[str, JobRecord]) -> None:
        self.records, self.reads = records, []

    async def get_job(self, jid: str) -> JobRecord:
        self.reads.append(jid)
        if jid not in self.records:
            raise StoreError(f"no job {jid}")
        return self.records[jid]


async def test_a_storm_of_lookups_reads_each_record_once():
    ids = [f"m{i}" for i in range(10_000)]
    store = Store({"1": _record("1", ids), "2": _record("2", ids[:10])})
    cache = RecentJobs()
    for m in ids:
        job, minions = await cache.get("1", store.get_job)
        assert m in minions and job.jid == "1"
        _job, minions = await cache.get("2", store.get_job)
        assert (m in minions) == (m in ids[:10])
    assert store.reads == ["1", "2"]


async def test_the_least_recently_used_record_goes_first():
    store = Store({str(i): _record(str(i), ["m"]) for i in range(5)})
    cache = RecentJobs(size=2)
    for jid in ("0", "1", "0", "2", "0", "1"):
        await cache.get(jid, store.get_job)
    assert store.reads == ["0", "1", "2", "1"]


async def test_a_failed_read_is_not_kept():
    store = Store({})
    cache = RecentJobs()
    for _ in range(2):
        with pytest.raises(StoreError):
            await cache.get("9", store.get_job)
    assert store.reads == ["9", "9"]
