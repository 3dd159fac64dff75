"""The job store contract (rx.master.store.base.JobStore), run against every backend: SQLite on real files
and PostgreSQL on a real server (one per session, a new database per test).  A backend-specific test
belongs in that backend's own file; whatever a caller may rely on belongs here."""

from __future__ import annotations

import asyncio
import multiprocessing
from pathlib import Path

import pytest

from rx.master.store import (JobExists, JobQuery, JobRecord, NotExpected, StoreConfig, StoreError, StoreUnavailable,
                             UnknownJob, open_stores)
from rx.master.store.base import JobStore, JobTarget
from rx.transport.ids import new_jid
from rx.transport.messages import Job

NOW = 1_700_000_000.0
JID = new_jid(NOW)
BAD_JIDS = ["../../etc", "1" * 19, "1" * 21, JID + "\n", "", "abcdefghijklmnopqrst", ".load", "../" + JID[3:],
            JID[:10] + "/" + JID[11:], "２" * 20]


def record(jid: str = JID, minions: list[str] | None = None, fun: str | list = "test.ping", tgt: str | list = "*",
           tgt_type: str = "glob", user: str = "root", ts: float | None = None) -> JobRecord:
    job = Job(jid=jid, fun=fun, arg=["a", 1], kwarg={"k": "v"}, tgt=tgt, tgt_type=tgt_type,
              ts=NOW if ts is None else ts, user=user)
    return JobRecord(job, ["web1"] if minions is None else minions, [])


class Backend:
    """Stores of one backend over the same storage (as a master's processes open them); closes them all."""

    def __init__(self, name: str, tmp_path: Path, dsn: str) -> None:
        self.name = name
        self.cfg = StoreConfig(pki_dir=str(tmp_path / "pki"), cachedir=str(tmp_path / "cache"),
                               job_store_backend=name, postgres_dsn=dsn)
        self.opened: list = []

    def open(self) -> JobStore:
        stores = open_stores(self.cfg)
        self.opened.append(stores)
        return stores.jobs

    async def aclose(self) -> None:
        for stores in self.opened:
            await stores.aclose()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request, tmp_path) -> Backend:
    dsn = request.getfixturevalue("postgres").new_database() if request.param == "postgres" else ""
    b = Backend(request.param, tmp_path, dsn)
    asyncio.run(open_stores(b.cfg).jobs.prepare())
    return b


@pytest.fixture
def store(backend) -> JobStore:
    return backend.open()


# ---------------------------------------------------------------- jobs

async def test_a_job_is_stored_whole_and_once(store):
    rec = record(minions=["web1", "web2"], fun="cmd.run", tgt=["web1", "web2"], tgt_type="list", user="alice")
    await store.create_job(rec)
    assert await store.get_job(JID) == rec
    with pytest.raises(JobExists):
        await store.create_job(record(minions=["db1"], fun="test.echo"))
    assert await store.get_job(JID) == rec
    assert await store.jids() == [JID] and await store.returns(JID) == {}


@pytest.mark.parametrize("bad", BAD_JIDS, ids=repr)
async def test_unknown_and_malformed_jids_are_unknown_jobs(store, bad):
    for call in (store.get_job, store.returns):
        with pytest.raises(UnknownJob):
            await call(bad)
    with pytest.raises(UnknownJob):
        await store.create_job(record(jid=bad))
    with pytest.raises(UnknownJob):
        await store.store_return(bad, "web1", {"return": True})
    assert await store.jids() == []


async def test_unknown_well_formed_jid(store):
    for call in (store.get_job, store.returns):
        with pytest.raises(UnknownJob):
            await call(JID)


async def test_the_jobs_survive_their_store_being_closed(backend, store):
    await store.create_job(record())
    await store.store_return(JID, "web1", {"return": 1})
    await store.aclose()
    again = backend.open()
    assert await again.get_job(JID) == record() and await again.returns(JID) == {"web1": {"return": 1}}


# ---------------------------------------------------------------- returns

async def test_a_return_is_stored_once(store):
    await store.create_job(record(minions=["web1", "web2"]))
    first = {"id": "web1", "return": {"x": [1, None, b"raw"]}, "retcode": 0, "success": True,
             "start_time": NOW + 0.5, "end_time": NOW + 1.5}
    assert await store.has_return(JID, "web1") is False
    assert await store.store_return(JID, "web1", first) is True
    assert await store.store_return(JID, "web1", {"id": "web1", "return": "forged", "retcode": 0}) is False
    assert await store.store_return(JID, "web2", {"return": 2, "retcode": 1, "success": False}) is True
    assert await store.returns(JID) == {"web1": first, "web2": {"return": 2, "retcode": 1, "success": False}}
    assert await store.has_return(JID, "web1") and not await store.has_return(JID, "web3")


async def test_a_minion_returns_for_each_of_its_jobs(store):
    other = new_jid(NOW + 1)
    await store.create_job(record())
    await store.create_job(record(jid=other))
    assert await store.store_return(JID, "web1", {"return": 1}) is True
    assert await store.store_return(other, "web1", {"return": 2}) is True
    assert await store.returns(other) == {"web1": {"return": 2}}


async def test_a_return_for_an_old_unknown_job_is_refused(store):
    with pytest.raises(UnknownJob):
        await store.store_return(JID, "web1", {"return": True})


async def test_a_return_for_a_recent_job_without_a_record_is_retried(store):
    """Its record may not be written yet (a full disk, a server down at publish time): "retry", not "unknown"."""
    with pytest.raises(StoreUnavailable):
        await store.store_return(new_jid(), "web1", {"return": True})


@pytest.mark.parametrize("bad_id", ["../web1", "a/b", "", ".", "..", "x" * 256, "a\x00b"], ids=repr)
async def test_a_bad_minion_id_is_refused(store, bad_id):
    await store.create_job(record(minions=[]))
    with pytest.raises(StoreError):
        await store.store_return(JID, bad_id, {"return": True})
    assert await store.returns(JID) == {}


async def test_a_return_the_job_did_not_expect(store):
    await store.create_job(record(minions=["web1"]))
    with pytest.raises(NotExpected) as caught:
        await store.store_return(JID, "db1", {"return": "forged"})
    assert caught.value.target == JobTarget("*", "glob", ":", frozenset({"web1"}))
    assert await store.returns(JID) == {}
    assert await store.store_return(JID, "db1", {"return": "late"}, expected_only=False) is True
    assert await store.returns(JID) == {"db1": {"return": "late"}}


async def test_another_process_reads_the_record_and_notices_a_new_one(backend, store):
    worker = backend.open()
    await store.create_job(record(minions=["web1"]))
    assert await worker.store_return(JID, "web1", {"return": 1}) is True
    with pytest.raises(NotExpected):
        await worker.store_return(JID, "web2", {"return": 2})
    assert await store.purge("99999999999999999999") == 1
    with pytest.raises(UnknownJob):
        await worker.store_return(JID, "web2", {"return": 2})
    await store.create_job(record(minions=["web2", "web3"]))
    assert await worker.store_return(JID, "web2", {"return": 2}) is True
    assert await store.returns(JID) == {"web2": {"return": 2}}


async def test_several_returns_stored_in_one_write_each_as_alone(store):
    """store_returns: each row answered as store_return would answer it, in one write."""
    other, recent = new_jid(NOW + 1), new_jid()
    await store.create_job(record(minions=["web1", "web2"]))
    await store.create_job(record(jid=other, minions=["web1"]))
    assert await store.store_return(JID, "web2", {"return": "first"}) is True
    rows = [(JID, "web1", {"return": 1}), (JID, "web2", {"return": "again"}), (other, "web1", {"return": 2}),
            (JID, "db1", {"return": "forged"}), (new_jid(NOW - 5), "web1", {}), (recent, "web1", {}),
            (JID, "../x", {}), (JID, "web1", {"return": "copy in the same batch"})]
    got = await store.store_returns(rows)
    assert got[:3] == [True, False, True] and got[7] is False
    assert [type(e) for e in got[3:7]] == [NotExpected, UnknownJob, StoreUnavailable, StoreError]
    assert await store.returns(JID) == {"web1": {"return": 1}, "web2": {"return": "first"}}
    assert await store.returns(other) == {"web1": {"return": 2}}
    assert await store.store_returns([]) == []


def test_workers_racing_one_return_store_it_once(backend):
    """MWorkers are processes (and masters may share PostgreSQL): a replay racing the original stores once."""
    asyncio.run(_create_and_close(backend, record()))
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()

    def put(n: int) -> None:
        async def one() -> bool:
            store = backend.open()
            try:
                return await store.store_return(JID, "web1", {"return": n})
            finally:
                await backend.aclose()
        results.put(asyncio.run(one()))

    procs = [ctx.Process(target=put, args=(n,)) for n in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    stored = [results.get(timeout=10) for _ in procs]
    assert stored.count(True) == 1 and stored.count(False) == 5


async def _create_and_close(backend: Backend, rec: JobRecord) -> None:
    store = backend.open()
    await store.create_job(rec)
    await store.store_return(rec.job.jid, "nobody-expected", {}, expected_only=False)
    await backend.aclose()


# ---------------------------------------------------------------- listing, probes, retention

async def test_jids_oldest_first_from_since_and_without_probes(store):
    jids = [new_jid(NOW + i) for i in (3, 1, 2)]
    for jid in jids:
        await store.create_job(record(jid=jid))
        assert jid in await store.jids()
    probe = new_jid(NOW + 4)
    await store.create_job(record(jid=probe, fun="jobs.find"))
    assert (await store.get_job(probe)).job.fun == "jobs.find"
    assert await store.store_return(probe, "web1", {"return": {}}) is True
    ordered = sorted(jids)
    assert await store.jids() == ordered
    assert await store.jids(since=ordered[1]) == ordered[1:]
    assert await store.jids(since=new_jid(NOW + 100)) == []


async def test_probes_expire(store):
    probe = new_jid(NOW)
    await store.create_job(record(jid=probe, fun="jobs.find"))
    await store.store_return(probe, "web1", {"return": {}})
    assert await store.expire_probes(older_than=NOW) == 0  # stored now, not at NOW
    import time
    assert await store.expire_probes(older_than=time.time() + 1) == 1
    with pytest.raises(UnknownJob):
        await store.returns(probe)


async def test_purge_removes_the_old_jobs_and_their_returns_in_batches(store):
    old = [new_jid(NOW - 48 * 3600 + i) for i in range(150)]  # more than one batch of every backend
    young = [new_jid(NOW - 23 * 3600), new_jid(NOW)]
    for jid in old + young:
        await store.create_job(record(jid=jid))
        await store.store_return(jid, "web1", {"return": True})
    assert await store.purge(new_jid(NOW - 24 * 3600)) == 150
    assert await store.jids() == young
    for jid in (old[0], old[-1]):
        with pytest.raises(UnknownJob):
            await store.get_job(jid)
    assert await store.returns(young[0]) == {"web1": {"return": True}}
    await store.create_job(record(jid=old[0]))
    assert await store.returns(old[0]) == {}


async def test_purge_does_not_hold_up_returns(backend, store):
    """A return stored while a large purge runs is stored (it waits at most for one batch)."""
    for i in range(200):
        jid = new_jid(NOW - 48 * 3600 + i)
        await store.create_job(record(jid=jid, minions=[f"m{n}" for n in range(20)]))
        for n in range(20):
            await store.store_return(jid, f"m{n}", {"return": "x" * 100})
    await store.create_job(record())
    worker = backend.open()
    purge = asyncio.create_task(store.purge(new_jid(NOW - 24 * 3600)))
    stored = await worker.store_return(JID, "web1", {"return": True})
    assert await purge == 200 and stored is True
    assert await store.returns(JID) == {"web1": {"return": True}}


LISTED = [  # jid offset, fun, tgt, tgt_type, user
    (1, "test.ping", "*", "glob", "root"),
    (2, "cmd.run", "web*", "glob", "alice"),
    (3, "pkg.version", ["db1", "web2"], "list", "alice"),
    (4, "test.echo", "G@os:Debian", "compound", "bob"),
]


@pytest.mark.parametrize("query, expected", [
    (JobQuery(), [4, 3, 2, 1]),
    (JobQuery(limit=2), [4, 3]),
    (JobQuery(functions=("test.*",)), [4, 1]),
    (JobQuery(functions=("cmd.run", "pkg.*")), [3, 2]),
    (JobQuery(targets=("web*",)), [3, 2]),
    (JobQuery(targets=("db1",)), [3]),
    (JobQuery(users=("alice",)), [3, 2]),
    (JobQuery(users=("alice",), functions=("cmd.*",)), [2]),
    (JobQuery(start=NOW + 2, end=NOW + 3), [3, 2]),
    (JobQuery(start=NOW + 3.5), [4]),
    (JobQuery(end=NOW + 1), [1]),
    (JobQuery(functions=("nothing.*",)), []),
], ids=lambda v: repr(v) if isinstance(v, JobQuery) else "")
async def test_list_jobs_filters_newest_first(store, query, expected):
    for offset, fun, tgt, tgt_type, user in LISTED:
        await store.create_job(record(jid=new_jid(NOW + offset), fun=fun, tgt=tgt, tgt_type=tgt_type, user=user,
                                      ts=NOW + offset))
    await store.create_job(record(jid=new_jid(NOW + 5), fun="jobs.find", ts=NOW + 5))
    listed = await store.list_jobs(query)
    assert [round(r.job.ts - NOW) for r in listed] == expected
    assert all(isinstance(r, JobRecord) for r in listed)
