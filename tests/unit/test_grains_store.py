"""rx.master.store.file_grains: the master's grains cache, one msgpack file per minion (real files)."""

from __future__ import annotations

import os
import stat

import pytest

from rx.master.store import StoreError
from rx.master.store.file_grains import FileGrainsStore
from rx.transport.codec import encode


@pytest.fixture
def store(tmp_path) -> FileGrainsStore:
    return FileGrainsStore(tmp_path)


async def test_store_and_get(store, tmp_path):
    assert await store.get("web1") is None
    await store.store("web1", {"os": "Linux", "cpu": {"count": 4}})
    assert await store.get("web1") == {"os": "Linux", "cpu": {"count": 4}}
    assert stat.S_IMODE(os.stat(tmp_path / "grains").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(tmp_path / "grains" / "web1").st_mode) == 0o600
    assert os.listdir(tmp_path / "grains") == ["web1"]  # no temp files left behind


async def test_the_same_grains_again_leave_the_file_alone_and_new_ones_replace_it(store, tmp_path):
    path = tmp_path / "grains" / "web1"
    await store.store("web1", {"os": "Linux", "cpu": {"count": 4}})
    before = os.stat(path)
    await FileGrainsStore(tmp_path).store("web1", {"os": "Linux", "cpu": {"count": 4}})
    after = os.stat(path)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    await store.store("web1", {"os": "Linux", "cpu": {"count": 4}, "extra": 1})  # changed: replaced
    assert await FileGrainsStore(tmp_path).get("web1") == {"os": "Linux", "cpu": {"count": 4}, "extra": 1}
    await store.store("web1", {"os": "Linux"})
    assert await FileGrainsStore(tmp_path).get("web1") == {"os": "Linux"}
    assert os.listdir(tmp_path / "grains") == ["web1"]


async def test_get_many_and_remove(store):
    await store.store("web1", {"os": "Linux"})
    await store.store("web2", {"os": "BSD"})
    assert await store.get_many(["web1", "web2", "web3"]) == {"web1": {"os": "Linux"}, "web2": {"os": "BSD"},
                                                             "web3": None}
    await store.remove("web1")
    await store.remove("web1")  # removing twice is fine
    assert await store.get_many(["web1", "web2"]) == {"web1": None, "web2": {"os": "BSD"}}


async def test_another_process_sees_new_grains(store, tmp_path):
    await store.store("web1", {"os": "Linux"})
    assert await store.get("web1") == {"os": "Linux"}
    await FileGrainsStore(tmp_path).store("web1", {"os": "BSD"})
    assert await store.get("web1") == {"os": "BSD"}
    await FileGrainsStore(tmp_path).remove("web1")
    assert await store.get("web1") is None


@pytest.mark.parametrize("content", [b"\xc1", encode([1, 2]), encode("text")], ids=["not-msgpack", "list", "str"])
async def test_unreadable_grains_are_none(store, tmp_path, content):
    await store.store("web1", {"os": "Linux"})
    (tmp_path / "grains" / "web2").write_bytes(content)
    assert await store.get("web2") is None
    assert await store.get("web1") == {"os": "Linux"}


@pytest.mark.parametrize("bad_id", ["../web1", "a/b", "..", ".", ".hidden", "", "a\x00b", "x" * 256], ids=repr)
async def test_bad_ids_never_touch_the_filesystem(store, tmp_path, bad_id):
    await store.store("web1", {"os": "Linux"})
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(StoreError):
        await store.store(bad_id, {"os": "evil"})
    assert await store.get(bad_id) is None
    await store.remove(bad_id)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
