"""rx.master.store.sqlite_jobs: one dir per jid holding the job record, the returns in one SQLite
table keyed by (jid, id), and the replay guard's nonces, on a real filesystem."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat

import pytest

from rx.master.services.jobs import JobService
from rx.master.store import JobExists, JobRecord, NotExpected, StoreConfig, StoreError, UnknownJob, open_stores
from rx.master.store.base import ExpectedCache, JobTarget
from rx.master.store.sqlite_jobs import DB_NAME, Db, SqliteJobStore, SqliteReplayGuard
from rx.transport.codec import encode
from rx.transport.ids import JID_RE, new_jid
from rx.transport.messages import Job

JID = "20240102030405060708"


def _record(jid: str = JID, minions: list[str] | None = None, no_grains: list[str] | None = None,
            fun: str = "test.ping") -> JobRecord:
    job = Job(jid=jid, fun=fun, arg=[], kwarg={}, tgt="*", tgt_type="glob", ts=1_700_000_000.0)
    return JobRecord(job, ["web1"] if minions is None else minions, no_grains or [])


@pytest.fixture
def store(tmp_path):
    s = SqliteJobStore(tmp_path / "jobs")
    asyncio.run(s.prepare())
    yield s
    s.close()


def _tree(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


# ---------------------------------------------------------------- jids

@pytest.mark.parametrize("now, jid", [
    (0.0, "19700101000000000000"),
    (1_700_000_000.123456, "20231114221320123456"),
    (4_102_444_799.999999, "20991231235959999999"),
])
def test_new_jid_is_utc_with_microseconds(now, jid):
    assert new_jid(now) == jid
    assert JID_RE.match(new_jid(now))


def test_new_jids_are_time_ordered():
    jids = [new_jid(1_700_000_000 + i / 1000) for i in range(100)]
    assert jids == sorted(jids) and len(set(jids)) == 100
    assert all(len(j) == 20 and j.isdigit() for j in jids)


# ---------------------------------------------------------------- jobs

def test_prepare_makes_a_private_dir(store, tmp_path):
    assert stat.S_IMODE(os.stat(tmp_path / "jobs").st_mode) == 0o700


def test_open_stores_puts_jobs_under_the_cachedir(stores, tmp_path):
    assert isinstance(stores.jobs, SqliteJobStore) and isinstance(stores.replay, SqliteReplayGuard)
    assert stores.replay.db is stores.jobs.db  # one pair of connections per database per process
    assert stat.S_IMODE(os.stat(tmp_path / "cache" / "jobs").st_mode) == 0o700


@pytest.mark.parametrize("key", ["job_store_backend", "key_store_backend", "grains_store_backend",
                                 "session_store_backend"])
def test_open_stores_refuses_an_unknown_backend(tmp_path, key):
    with pytest.raises(StoreError, match=key):
        open_stores(StoreConfig(pki_dir=str(tmp_path), cachedir=str(tmp_path), **{key: "nosuch"}))


async def test_create_and_get(store):
    record = _record(minions=["web1", "web2"], no_grains=["web2"])
    await store.create_job(record)
    assert await store.get_job(JID) == record
    assert await store.jids() == [JID]
    assert await store.returns(JID) == {}


async def test_a_jid_is_created_once(store):
    await store.create_job(_record())
    with pytest.raises(JobExists):
        await store.create_job(_record(minions=["web2"], fun="cmd.run"))
    assert await store.get_job(JID) == _record()


async def test_unknown_job(store):
    assert await store.jids() == []
    for call in (store.get_job, store.returns):
        with pytest.raises(UnknownJob):
            await call(JID)


@pytest.mark.parametrize("content", [b"\xc1garbage", encode({"load": {"jid": JID}, "minions": []}), encode([1])],
                         ids=["not-msgpack", "not-a-job", "not-a-record"])
async def test_corrupt_record_is_an_unknown_job(store, tmp_path, content):
    await store.create_job(_record())
    (tmp_path / "jobs" / JID / ".load").write_bytes(content)
    with pytest.raises(UnknownJob):
        await store.get_job(JID)


@pytest.mark.parametrize("bad_jid", ["../../etc", "1" * 19, "1" * 21, JID + "\n", "", "abcdefghijklmnopqrst", ".load"],
                         ids=repr)
async def test_bad_jids_never_touch_the_filesystem(store, tmp_path, bad_jid):
    before = _tree(tmp_path)
    with pytest.raises(UnknownJob):
        await store.create_job(_record(jid=bad_jid))
    with pytest.raises(UnknownJob):
        await store.store_return(bad_jid, "web1", {"return": True})
    for call in (store.get_job, store.returns):
        with pytest.raises(UnknownJob):
            await call(bad_jid)
    assert _tree(tmp_path) == before


# ---------------------------------------------------------------- returns

async def test_store_return_once_and_refuse_the_replay(store, tmp_path):
    await store.create_job(_record())
    first = {"id": "web1", "return": True, "retcode": 0}
    assert await store.has_return(JID, "web1") is False
    assert await store.store_return(JID, "web1", first) is True
    assert await store.store_return(JID, "web1", {"id": "web1", "return": "forged", "retcode": 0}) is False
    assert await store.returns(JID) == {"web1": first}
    assert await store.has_return(JID, "web1") is True
    assert stat.S_IMODE(os.stat(tmp_path / "jobs" / DB_NAME).st_mode) == 0o600


def test_concurrent_stores_from_several_processes_keep_exactly_one(store, tmp_path):
    """MWorkers are separate processes: a replay racing the original still stores once."""
    import multiprocessing
    asyncio.run(store.create_job(_record()))
    assert asyncio.run(store.has_return(JID, "web1")) is False  # the database exists (see the cold-start test)
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()

    def put(n: int) -> None:
        results.put(asyncio.run(SqliteJobStore(tmp_path / "jobs").store_return(JID, "web1", {"return": n})))

    procs = [ctx.Process(target=put, args=(n,)) for n in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    stored = [results.get(timeout=10) for _ in procs]
    assert stored.count(True) == 1 and stored.count(False) == 5
    assert list(asyncio.run(store.returns(JID))) == ["web1"]


async def test_first_use_of_a_fresh_database_while_another_process_writes(store, tmp_path):
    """Every MWorker opens the returns database on its first request: a cold master whose workers get their
    first returns at the same moment must store them (or report a StoreError), never crash on the race."""
    await store.create_job(_record())
    writer = sqlite3.connect(tmp_path / "jobs" / DB_NAME, isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN IMMEDIATE")  # another worker, still setting the database up
    try:
        commit = asyncio.get_running_loop().call_later(0.3, writer.execute, "COMMIT")
        assert await store.store_return(JID, "web1", {"return": True}) is True
    finally:
        commit.cancel()  # a no-op once it ran (store_return waited for it); else the writer is not used closed
        writer.close()


async def test_returns_are_per_minion(store):
    await store.create_job(_record(minions=["web1", "web2"]))
    assert await store.store_return(JID, "web1", {"return": 1}) is True
    assert await store.store_return(JID, "web2", {"return": 2}) is True
    assert await store.returns(JID) == {"web1": {"return": 1}, "web2": {"return": 2}}


async def test_the_same_minion_may_return_for_different_jobs(store):
    other = "20240102030405060709"
    await store.create_job(_record())
    await store.create_job(_record(jid=other))
    assert await store.store_return(JID, "web1", {"return": 1}) is True
    assert await store.store_return(other, "web1", {"return": 2}) is True
    assert await store.has_return(other, "web1") and not await store.has_return(other, "web2")


async def test_return_for_an_unknown_job(store):
    with pytest.raises(UnknownJob):
        await store.store_return(JID, "web1", {"return": True})


@pytest.mark.parametrize("bad_id", ["../web1", ".load", "a/b", "", ".", "..", "x" * 256, "a\x00b"], ids=repr)
async def test_return_from_a_bad_minion_id_is_refused(store, tmp_path, bad_id):
    await store.create_job(_record(minions=[]))
    before = _tree(tmp_path)
    with pytest.raises(StoreError):
        await store.store_return(JID, bad_id, {"return": True})
    assert _tree(tmp_path) == before
    assert await store.get_job(JID) == _record(minions=[])


async def test_undecodable_returns_are_skipped(store, tmp_path):
    await store.create_job(_record(minions=["web1", "web2"]))
    await store.store_return(JID, "web1", {"return": 1})
    with sqlite3.connect(tmp_path / "jobs" / DB_NAME) as db:
        db.execute("INSERT INTO ret VALUES (?, ?, ?)", (JID, "web2", b"\xc1"))
    assert await store.returns(JID) == {"web1": {"return": 1}}


async def test_return_from_a_minion_the_job_did_not_expect(store):
    """NotExpected names the job's target so the caller can judge; nothing is stored unless it says so."""
    await store.create_job(_record(minions=["web1"]))
    with pytest.raises(NotExpected) as caught:
        await store.store_return(JID, "db1", {"return": "forged"})
    assert caught.value.target == JobTarget("*", "glob", ":", frozenset({"web1"}))
    assert await store.returns(JID) == {}
    assert await store.store_return(JID, "db1", {"return": "late"}, expected_only=False) is True
    assert await store.returns(JID) == {"db1": {"return": "late"}}


async def test_another_workers_store_reads_the_record_once_and_notices_a_new_version(tmp_path):
    """Returns arrive at any worker: each reads a job's record on its first return; a jid purged and published
    again (a new record) is read again when the cached set lacks the minion."""
    creator, worker = SqliteJobStore(tmp_path / "jobs"), SqliteJobStore(tmp_path / "jobs")
    try:
        await creator.prepare()
        await creator.create_job(_record(minions=["web1"]))
        assert await worker.store_return(JID, "web1", {"return": 1}) is True
        with pytest.raises(NotExpected):
            await worker.store_return(JID, "web2", {"return": 2})
        await creator.purge("99999999999999999999")
        with pytest.raises(UnknownJob):
            await worker.store_return(JID, "web2", {"return": 2})
        await creator.create_job(_record(minions=["web2", "web3"]))
        assert await worker.store_return(JID, "web2", {"return": 2}) is True
    finally:
        creator.close()
        worker.close()


def _target(n: int) -> JobTarget:
    return JobTarget("*", "glob", ":", frozenset(f"m{i}" for i in range(n)))


@pytest.mark.parametrize("sizes, max_jobs, max_ids, kept", [
    ([1, 1, 1], 2, 100, ["j1", "j2"]),         # the oldest job goes first
    ([40, 40, 40], 10, 100, ["j1", "j2"]),     # bounded by the ids held in all
    ([10, 200, 10], 10, 100, ["j0", "j2"]),    # a job bigger than the bound is not cached at all
])
def test_expected_cache_is_bounded(sizes, max_jobs, max_ids, kept):
    cache = ExpectedCache(max_jobs=max_jobs, max_ids=max_ids)
    for i, n in enumerate(sizes):
        cache.put(f"j{i}", _target(n), i)
    assert [j for j in ("j0", "j1", "j2") if cache.get(j) is not None] == kept
    assert cache._ids == sum(sizes[int(j[1])] for j in kept)


def test_expected_cache_keeps_the_most_recently_used():
    cache = ExpectedCache(max_jobs=2)
    cache.put("a", _target(1), 0)
    cache.put("b", _target(1), 0)
    assert cache.get("a") is not None
    cache.put("c", _target(1), 0)
    assert cache.get("b") is None and cache.get("a") == (_target(1), 0)


# ---------------------------------------------------------------- listing and retention

async def test_jids_are_listed_oldest_first_and_from_since(store):
    jids = [new_jid(1_700_000_000.0 + i) for i in (3, 1, 2)]
    for jid in jids:
        await store.create_job(_record(jid=jid))
        assert jid in await store.jids()  # a cached listing notices the new job
    ordered = sorted(jids)
    assert await store.jids() == ordered
    assert await store.jids(since=ordered[1]) == ordered[1:]
    assert await store.jids(since=new_jid(1_800_000_000.0)) == []


async def test_purge_removes_only_jobs_before_the_cutoff_and_their_returns(store):
    now = 1_700_000_000.0
    old = [new_jid(now - 48 * 3600), new_jid(now - 25 * 3600)]
    young = [new_jid(now - 23 * 3600), new_jid(now)]
    for jid in old + young:
        await store.create_job(_record(jid=jid))
        await store.store_return(jid, "web1", {"return": True})
    assert await store.purge(new_jid(now - 24 * 3600)) == 2
    assert await store.jids() == young
    for jid in old:
        with pytest.raises(UnknownJob):
            await store.get_job(jid)
    assert await store.returns(young[0]) == {"web1": {"return": True}}
    await store.create_job(_record(jid=old[0]))  # the purged job's returns went with it
    assert await store.returns(old[0]) == {}


async def test_purge_ignores_foreign_files(store, tmp_path):
    (tmp_path / "jobs" / "README").write_text("not a job")
    (tmp_path / "jobs" / "00000000000000000000x").mkdir()
    assert await store.purge("99999999999999999999") == 0
    assert (tmp_path / "jobs" / "README").exists() and (tmp_path / "jobs" / "00000000000000000000x").exists()


# ---------------------------------------------------------------- replay guard

async def test_nonce_is_accepted_once_then_forgotten_after_the_window(tmp_path):
    guard = SqliteReplayGuard(Db(tmp_path / DB_NAME))
    try:
        assert await guard.first_use(b"n" * 12, 1000.0) is True
        assert await guard.first_use(b"n" * 12, 1001.0) is False
        assert await guard.first_use(b"m" * 12, 1001.0) is True
        await guard.forget(older_than=1000.5)
        assert await guard.first_use(b"n" * 12, 2000.0) is True
        assert await guard.first_use(b"m" * 12, 2000.0) is False
    finally:
        guard.close()


def test_nonces_are_shared_by_every_process_on_the_same_database(stores, tmp_path):
    """Every MWorker opens its own stores: a nonce one of them saw is a replay for all the others."""
    import multiprocessing
    assert asyncio.run(stores.replay.first_use(b"n" * 12, 1000.0)) is True
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()

    def probe(nonce: bytes) -> None:
        other = open_stores(StoreConfig(pki_dir=str(tmp_path / "pki"), cachedir=str(tmp_path / "cache")))
        results.put(asyncio.run(other.replay.first_use(nonce, 1000.0)))

    for nonce in (b"n" * 12, b"m" * 12):
        p = ctx.Process(target=probe, args=(nonce,))
        p.start()
        p.join(30)
    assert [results.get(timeout=10) for _ in range(2)] == [False, True]
    assert asyncio.run(stores.replay.first_use(b"m" * 12, 1000.0)) is False


# ---------------------------------------------------------------- the job service over the store

async def test_job_service_lists_jobs_and_returns(stores):
    service = JobService(stores)
    await stores.jobs.create_job(_record(minions=["web1", "web2"]))
    probe = new_jid(1_800_000_000.0)
    await stores.jobs.create_job(_record(jid=probe, fun="jobs.find"))  # a client's find_job probe
    await stores.jobs.store_return(JID, "web1", {"return": "pong", "retcode": 0, "success": True})
    assert await service.list_jobs() == {JID: {
        "Function": "test.ping", "Arguments": [], "Target": "*", "Target-type": "glob", "User": "root",
        "StartTime": "2023, Nov 14 22:13:20.000000", "Minions": ["web1", "web2"]}}  # a probe is not listed
    assert (await service.job(probe)).job.fun == "jobs.find"
    assert await service.job(JID) == _record(minions=["web1", "web2"])
    assert await service.returns(JID) == {"web1": {"return": "pong", "retcode": 0, "success": True}}
    assert await service.lookup_jid(JID) == {"web1": "pong"}
    assert await service.lookup_jid(JID, missing=True) == {"web1": "pong", "web2": "Minion did not return"}
    assert await service.lookup_jid(JID, returned=False, missing=True) == {"web2": "Minion did not return"}
    assert await service.exit_success(JID) == {"web1": True, "web2": False}
    printed = await service.print_job(JID)
    assert printed[JID]["Result"] == {"web1": {"return": "pong", "retcode": 0, "success": True}}
    assert printed[JID]["Function"] == "test.ping" and printed[JID]["Minions"] == ["web1", "web2"]
    assert await service.last_run() == printed
    with pytest.raises(UnknownJob):
        await service.lookup_jid("20240102030405060799")


async def test_job_service_skips_unreadable_jobs(stores, tmp_path):
    await stores.jobs.create_job(_record())
    (tmp_path / "cache" / "jobs" / JID / ".load").write_bytes(b"\xc1")
    assert await JobService(stores).list_jobs() == {}
