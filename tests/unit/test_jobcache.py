"""rx.master.jobcache: one dir per jid, one O_EXCL file per return, on a real filesystem."""

from __future__ import annotations

import os
import stat

import pytest

from rx.master.jobcache import JobCache, JobExists, UnknownJob
from rx.transport.ids import new_jid
from rx.transport.ids import JID_RE

JID = "20240102030405060708"
LOAD = {"fun": "test.ping", "tgt": "*", "arg": []}


@pytest.fixture
def cache(tmp_path) -> JobCache:
    c = JobCache(tmp_path / "jobs")
    c.ensure()
    return c


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

def test_ensure_makes_a_private_dir(cache, tmp_path):
    assert stat.S_IMODE(os.stat(tmp_path / "jobs").st_mode) == 0o700


def test_create_and_load(cache):
    cache.create(JID, LOAD, ["web1", "web2"], no_grains=["web2"])
    assert cache.exists(JID)
    assert cache.load(JID) == {"load": LOAD, "minions": ["web1", "web2"], "no_grains": ["web2"]}
    assert cache.returns(JID) == {}


def test_a_jid_is_created_once(cache):
    cache.create(JID, LOAD, ["web1"])
    with pytest.raises(JobExists):
        cache.create(JID, {"fun": "cmd.run"}, ["web2"])
    assert cache.load(JID)["load"] == LOAD


def test_unknown_job(cache):
    assert not cache.exists(JID)
    with pytest.raises(UnknownJob):
        cache.load(JID)


def test_corrupt_load_is_an_unknown_job(cache, tmp_path):
    cache.create(JID, LOAD, [])
    (tmp_path / "jobs" / JID / ".load").write_bytes(b"\xc1garbage")
    with pytest.raises(UnknownJob):
        cache.load(JID)


@pytest.mark.parametrize("bad_jid", ["../../etc", "1" * 19, "1" * 21, JID + "\n", "", "abcdefghijklmnopqrst", ".load"],
                         ids=repr)
def test_bad_jids_never_touch_the_filesystem(cache, tmp_path, bad_jid):
    before = _tree(tmp_path)
    with pytest.raises(UnknownJob):
        cache.create(bad_jid, LOAD, [])
    with pytest.raises(UnknownJob):
        cache.store_return(bad_jid, "web1", {"return": True})
    with pytest.raises(UnknownJob):
        cache.load(bad_jid)
    with pytest.raises(UnknownJob):
        cache.exists(bad_jid)
    assert _tree(tmp_path) == before


# ---------------------------------------------------------------- returns

def test_store_return_once_and_refuse_the_replay(cache, tmp_path):
    cache.create(JID, LOAD, ["web1"])
    first = {"id": "web1", "return": True, "retcode": 0}
    assert cache.store_return(JID, "web1", first) is True
    assert cache.store_return(JID, "web1", {"id": "web1", "return": "forged", "retcode": 0}) is False
    assert cache.returns(JID) == {"web1": first}
    assert stat.S_IMODE(os.stat(tmp_path / "jobs" / ".returns.sqlite").st_mode) == 0o600


def test_concurrent_stores_from_several_processes_keep_exactly_one(cache, tmp_path):
    """MWorkers are separate processes: a replay racing the original still stores once."""
    import multiprocessing
    cache.create(JID, LOAD, ["web1"])
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()

    def store(n: int) -> None:
        results.put(JobCache(tmp_path / "jobs").store_return(JID, "web1", {"return": n}))

    procs = [ctx.Process(target=store, args=(n,)) for n in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    stored = [results.get(timeout=10) for _ in procs]
    assert stored.count(True) == 1 and stored.count(False) == 5
    assert list(cache.returns(JID)) == ["web1"]


def test_returns_are_per_minion(cache):
    cache.create(JID, LOAD, ["web1", "web2"])
    assert cache.store_return(JID, "web1", {"return": 1}) is True
    assert cache.store_return(JID, "web2", {"return": 2}) is True
    assert cache.returns(JID) == {"web1": {"return": 1}, "web2": {"return": 2}}


def test_the_same_minion_may_return_for_different_jobs(cache):
    other = "20240102030405060709"
    cache.create(JID, LOAD, ["web1"])
    cache.create(other, LOAD, ["web1"])
    assert cache.store_return(JID, "web1", {"return": 1}) is True
    assert cache.store_return(other, "web1", {"return": 2}) is True


def test_return_for_an_unknown_job(cache):
    with pytest.raises(UnknownJob):
        cache.store_return(JID, "web1", {"return": True})


@pytest.mark.parametrize("bad_id", ["../web1", ".load", "a/b", "", ".", "..", "x" * 256, "a\x00b"], ids=repr)
def test_return_from_a_bad_minion_id_is_refused(cache, tmp_path, bad_id):
    cache.create(JID, LOAD, [])
    before = _tree(tmp_path)
    with pytest.raises(ValueError):
        cache.store_return(JID, bad_id, {"return": True})
    assert _tree(tmp_path) == before
    assert cache.load(JID)["load"] == LOAD


def test_unreadable_return_files_are_skipped(cache, tmp_path):
    cache.create(JID, LOAD, ["web1", "web2"])
    cache.store_return(JID, "web1", {"return": 1})
    (tmp_path / "jobs" / JID / "web2").write_bytes(b"\xc1")
    assert cache.returns(JID) == {"web1": {"return": 1}}


# ---------------------------------------------------------------- retention

def test_purge_removes_only_jobs_older_than_keep_hours(cache):
    now = 1_700_000_000.0
    old = [new_jid(now - 48 * 3600), new_jid(now - 25 * 3600)]
    young = [new_jid(now - 23 * 3600), new_jid(now)]
    for jid in old + young:
        cache.create(jid, LOAD, ["web1"])
        cache.store_return(jid, "web1", {"return": True})
    assert cache.purge(keep_hours=24, now=now) == 2
    assert [cache.exists(j) for j in old + young] == [False, False, True, True]


def test_purge_ignores_foreign_files(cache, tmp_path):
    (tmp_path / "jobs" / "README").write_text("not a job")
    (tmp_path / "jobs" / "00000000000000000000x").mkdir()
    assert cache.purge(keep_hours=1, now=1_700_000_000.0) == 0
    assert (tmp_path / "jobs" / "README").exists()


@pytest.mark.parametrize("keep", [0, -1])
def test_purge_with_keep_hours_0_keeps_everything(cache, keep):
    jid = new_jid(0.0)
    cache.create(jid, LOAD, [])
    assert cache.purge(keep_hours=keep, now=1_700_000_000.0) == 0
    assert cache.exists(jid)


def test_nonce_is_accepted_once_then_forgotten_after_the_window(cache):
    assert cache.first_use(b"n" * 12, 1000.0) is True
    assert cache.first_use(b"n" * 12, 1001.0) is False
    assert cache.first_use(b"m" * 12, 1001.0) is True
    cache.forget_nonces(older_than=1000.5)
    assert cache.first_use(b"n" * 12, 2000.0) is True
    assert cache.first_use(b"m" * 12, 2000.0) is False
