"""rx.master.store.file_keys: the minion key store on a real filesystem (tmp_path)."""

from __future__ import annotations

import asyncio
import base64
import os
import stat

import pytest

from rx.master.store import Decision, KeyInfo, KeyStoreError
from rx.master.store.base import KEY_STATES
from rx.master.store.file_keys import DIRS, FileKeyStore
from rx.transport.crypto import Identity, fingerprint


@pytest.fixture
def store(tmp_path) -> FileKeyStore:
    ks = FileKeyStore(tmp_path / "pki")
    asyncio.run(ks.prepare())
    return ks


def _key() -> bytes:
    return Identity.generate().public


async def _where(store: FileKeyStore, minion_id: str) -> dict[str, bytes]:
    """Every state that holds a key for `minion_id`, with that key."""
    return {s: k for s in KEY_STATES if (k := await store.read(s, minion_id)) is not None}


async def _listing(store: FileKeyStore) -> dict[str, list[str]]:
    return {s: await store.ids(s) for s in KEY_STATES}


def test_salt_layout():
    assert DIRS == {"accepted": "minions", "pending": "minions_pre", "rejected": "minions_rejected",
                    "denied": "minions_denied"}


def test_prepare_makes_private_dirs(store, tmp_path):
    assert stat.S_IMODE(os.stat(tmp_path / "pki").st_mode) == 0o700
    for name in DIRS.values():
        assert stat.S_IMODE(os.stat(tmp_path / "pki" / name).st_mode) == 0o700


async def test_key_files_are_base64_in_the_state_dir(store, tmp_path):
    key = _key()
    await store.write("pending", "web1", key)
    assert base64.b64decode((tmp_path / "pki" / "minions_pre" / "web1").read_bytes().strip()) == key
    assert await store.read("pending", "web1") == key
    assert await store.read("accepted", "web1") is None


async def test_master_public(store, tmp_path):
    assert await store.master_public() is None
    (tmp_path / "pki" / "master.pub").write_bytes(b"m" * 32)
    assert await store.master_public() == b"m" * 32


# ---------------------------------------------------------------- decide (what an _auth gets)

DECIDE = [
    # (keys filed for the id before, key presented, auto_accept, answer, keys filed after); "a" and "b" are two keys
    ({}, "a", False, "pending", {"pending": "a"}),                       # an unknown key waits for rx-key
    ({"pending": "a"}, "a", False, "pending", {"pending": "a"}),         # asking again changes nothing
    ({"pending": "a"}, "b", False, "denied", {"pending": "a", "denied": "b"}),
    ({"pending": "a"}, "b", True, "denied", {"pending": "a", "denied": "b"}),   # even with auto_accept
    ({"accepted": "a"}, "a", False, "accepted", {"accepted": "a"}),
    ({"accepted": "a"}, "b", False, "denied", {"accepted": "a", "denied": "b"}),  # never swapped in
    ({"accepted": "a"}, "b", True, "denied", {"accepted": "a", "denied": "b"}),
    ({"rejected": "a"}, "a", True, "rejected", {"rejected": "a"}),       # a rejected id stays rejected
    ({"rejected": "a"}, "b", True, "rejected", {"rejected": "a"}),
    ({}, "a", True, "accepted", {"accepted": "a"}),                      # auto_accept files it as accepted
    ({"pending": "a"}, "a", True, "accepted", {"accepted": "a"}),        # ... and promotes the same pending key
]


@pytest.mark.parametrize("before, presented, auto, answer, after", DECIDE)
async def test_decide(store, before, presented, auto, answer, after):
    keys = {"a": _key(), "b": _key()}
    for state, name in before.items():
        await store.write(state, "web1", keys[name])
    assert await store.decide("web1", keys[presented], auto_accept=auto) == Decision(answer)
    assert await _where(store, "web1") == {state: keys[name] for state, name in after.items()}
    assert await store.is_accepted("web1") is ("accepted" in after)


def _age(tmp_path, minion_id: str, seconds: int) -> None:
    """Set a pending key's mtime (its age for eviction) to `seconds` after the epoch."""
    os.utime(tmp_path / "pki" / "minions_pre" / minion_id, ns=(seconds * 10**9, seconds * 10**9))


async def test_max_pending_evicts_the_oldest_and_a_key_that_asks_again_is_young(store, tmp_path):
    keys = {i: _key() for i in ("web1", "web2", "web3", "web4")}
    for i in ("web1", "web2"):
        assert await store.decide(i, keys[i], auto_accept=False, max_pending=2) == Decision("pending")
    _age(tmp_path, "web1", 1000)
    _age(tmp_path, "web2", 2000)
    assert await store.decide("web1", keys["web1"], auto_accept=False, max_pending=2) == Decision("pending")
    assert (tmp_path / "pki" / "minions_pre" / "web1").stat().st_mtime > 2000  # asking again made it young
    assert await store.decide("web3", keys["web3"], auto_accept=False, max_pending=2) == Decision(
        "pending", (KeyInfo("web2", "pending", keys["web2"]),))
    assert await store.ids("pending") == ["web1", "web3"]
    assert await store.decide("web4", keys["web4"], auto_accept=False, max_pending=0) == Decision("pending")  # no limit
    assert await store.ids("pending") == ["web1", "web3", "web4"]


async def test_a_lowered_cap_is_exact_at_the_next_filing(store, tmp_path):
    for n in range(5):
        await store.decide(f"old{n}", _key(), auto_accept=False)
        _age(tmp_path, f"old{n}", 1000 + n)
    out = await store.decide("new", _key(), auto_accept=False, max_pending=2)
    assert [k.id for k in out.evicted] == ["old0", "old1", "old2", "old3"]
    assert await store.ids("pending") == ["new", "old4"]


async def test_the_oldest_is_evicted_whichever_worker_changed_the_keys(store, tmp_path):
    """Each worker keeps its own list of pending keys by age: keys another worker made young, evicted or
    filed since are never taken for the oldest."""
    other = FileKeyStore(tmp_path / "pki")
    keys = {i: _key() for i in ("k1", "k2", "k3", "k4", "k5", "k6")}
    for n, i in enumerate(("k1", "k2", "k3"), 1):
        await store.decide(i, keys[i], auto_accept=False, max_pending=3)
        _age(tmp_path, i, 1000 * n)
    assert [k.id for k in (await store.decide("k4", keys["k4"], False, 3)).evicted] == ["k1"]
    _age(tmp_path, "k4", 4000)
    await other.decide("k2", keys["k2"], False, 3)  # made young by another worker
    _age(tmp_path, "k2", 5000)
    assert [k.id for k in (await store.decide("k5", keys["k5"], False, 3)).evicted] == ["k3"]
    assert [k.id for k in (await other.decide("k6", keys["k6"], False, 3)).evicted] == ["k4"]
    assert await store.ids("pending") == ["k2", "k5", "k6"]


async def test_accepted_and_known_keys_are_never_evicted(store, tmp_path):
    await store.write("accepted", "web1", _key())
    await store.decide("web2", _key(), auto_accept=False, max_pending=1)
    out = await store.decide("web3", _key(), auto_accept=False, max_pending=1)
    assert [k.id for k in out.evicted] == ["web2"]
    assert await _listing(store) == {"accepted": ["web1"], "pending": ["web3"], "rejected": [], "denied": []}


RACE_IDS = [f"web{n}" for n in range(200)]


def _race(pki: str, auto: bool, start, out) -> None:
    """One process presenting its own key for every id of RACE_IDS once `start` opens; puts
    {id: (status, key)} on `out`."""
    keys = {i: Identity.generate().public for i in RACE_IDS}
    store = FileKeyStore(pki)

    async def run() -> dict:
        return {i: ((await store.decide(i, keys[i], auto_accept=auto)).status, keys[i]) for i in RACE_IDS}
    start.wait()
    out.put(asyncio.run(run()))


@pytest.mark.parametrize("auto", [True, False], ids=["auto_accept", "pending"])
def test_two_keys_for_one_new_id_at_once_have_one_winner(tmp_path, auto):
    """Key filing is atomic across processes (the MWorkers): one key per id is filed, every other is denied."""
    import multiprocessing
    pki = str(tmp_path / "pki")
    asyncio.run(FileKeyStore(pki).prepare())
    mp = multiprocessing.get_context("fork")
    start, out = mp.Barrier(4), mp.Queue()
    procs = [mp.Process(target=_race, args=(pki, auto, start, out)) for _ in range(4)]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(30)
    store = FileKeyStore(pki)
    for minion_id in RACE_IDS:
        answers = [r[minion_id] for r in results]
        won = [key for status, key in answers if status != "denied"]
        assert len(won) == 1, f"{minion_id}: {len(won)} winners"
        assert asyncio.run(store.read("accepted" if auto else "pending", minion_id)) == won[0]


# ---------------------------------------------------------------- listing, finding, moving

async def test_listing_find_and_ignore_dotfiles(store, tmp_path):
    keys = {i: _key() for i in ("web1", "web2", "db1")}
    await store.write("accepted", "web1", keys["web1"])
    await store.write("pending", "web2", keys["web2"])
    await store.write("rejected", "db1", keys["db1"])
    (tmp_path / "pki" / "minions" / ".web9.tmp123").write_bytes(b"partial")
    assert await _listing(store) == {"accepted": ["web1"], "pending": ["web2"], "rejected": ["db1"], "denied": []}
    found = await store.find("web*")
    assert [(k.id, k.state) for k in found] == [("web1", "accepted"), ("web2", "pending")]
    assert found[0].public == keys["web1"] and found[0].fingerprint == fingerprint(keys["web1"])
    assert [k.id for k in await store.find("*", states=("rejected",))] == ["db1"]
    assert await store.find("nomatch*") == []


async def test_find_is_case_sensitive(store):
    await store.write("accepted", "Web1", _key())
    assert await store.find("web*") == [] and [k.id for k in await store.find("Web*")] == ["Web1"]


async def test_ids_of_a_missing_dir_is_empty(tmp_path):
    assert await _listing(FileKeyStore(tmp_path / "none")) == {s: [] for s in KEY_STATES}
    assert await FileKeyStore(tmp_path / "none").accepted_version() is None


async def test_move_pending_to_accepted(store):
    key = _key()
    await store.decide("web1", key, auto_accept=False)
    await store.move(KeyInfo("web1", "pending", key), "accepted")
    assert await _where(store, "web1") == {"accepted": key}


async def test_move_denied_to_accepted_replaces_the_old_key(store):
    old, new = _key(), _key()
    await store.write("accepted", "web1", old)
    await store.decide("web1", new, auto_accept=False)
    await store.move(KeyInfo("web1", "denied", new), "accepted")
    assert await _where(store, "web1") == {"accepted": new}
    assert (await store.decide("web1", old, auto_accept=False)).status == "denied"


async def test_move_accepted_to_rejected(store):
    key = _key()
    await store.write("accepted", "web1", key)
    await store.move(KeyInfo("web1", "accepted", key), "rejected")
    assert await _where(store, "web1") == {"rejected": key}
    assert not await store.is_accepted("web1")


async def test_remove(store):
    await store.write("pending", "web1", _key())
    assert await store.remove("pending", "web1") is True
    assert await store.remove("pending", "web1") is False
    assert await _where(store, "web1") == {}


async def test_accepted_version_changes_with_the_accepted_set(store, tmp_path):
    os.utime(tmp_path / "pki" / "minions", ns=(0, 0))  # long ago: mtime granularity cannot hide the change
    first = await store.accepted_version()
    await store.write("accepted", "web1", _key())
    second = await store.accepted_version()
    assert second != first
    await store.write("pending", "web2", _key())
    assert await store.accepted_version() == second


async def test_longest_valid_id_can_be_stored(store, tmp_path):
    long_id = "m" * 255
    key = _key()
    assert (await store.decide(long_id, key, auto_accept=False)).status == "pending"
    assert await store.read("pending", long_id) == key
    assert sorted(os.listdir(tmp_path / "pki" / "minions_pre")) == [long_id]  # no temp files left behind


async def test_write_leaves_no_temp_files(store, tmp_path):
    for _ in range(3):
        await store.write("accepted", "web1", _key())
    assert os.listdir(tmp_path / "pki" / "minions") == ["web1"]


# ---------------------------------------------------------------- ids and paths

@pytest.mark.parametrize("bad_id", ["../web1", "a/b", "..", ".", ".hidden", "", "a\\b", "a\x00b", "x" * 256, "a\nb"],
                         ids=repr)
async def test_bad_ids_never_touch_the_filesystem(store, tmp_path, bad_id):
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    for call in (lambda: store.read("accepted", bad_id), lambda: store.write("accepted", bad_id, _key()),
                 lambda: store.remove("accepted", bad_id), lambda: store.decide(bad_id, _key(), True),
                 lambda: store.move(KeyInfo(bad_id, "pending", _key()), "accepted")):
        with pytest.raises(KeyStoreError):
            await call()
    assert await store.is_accepted(bad_id) is False
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


async def test_symlink_out_of_the_key_dir_is_refused(store, tmp_path):
    outside = tmp_path / "outside"
    outside.write_bytes(base64.b64encode(_key()))
    os.symlink(outside, tmp_path / "pki" / "minions" / "web1")
    with pytest.raises(KeyStoreError, match="escapes"):
        await store.read("accepted", "web1")
    assert await store.is_accepted("web1") is False


async def test_a_key_file_that_is_a_symlink_is_refused_even_inside_the_key_dir(store, tmp_path):
    await store.write("accepted", "web2", _key())
    os.symlink(tmp_path / "pki" / "minions" / "web2", tmp_path / "pki" / "minions" / "web1")
    with pytest.raises(KeyStoreError, match="symlink"):
        await store.read("accepted", "web1")
    assert await store.read("accepted", "web2") is not None


@pytest.mark.parametrize("content", [b"not base64!!", b"\xff\xfe", b"QUJD=extra"])
async def test_corrupt_key_file(store, tmp_path, content):
    (tmp_path / "pki" / "minions" / "web1").write_bytes(content)
    with pytest.raises(KeyStoreError, match="corrupt"):
        await store.read("accepted", "web1")
