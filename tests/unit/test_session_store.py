"""rx.master.store.file_session: the session secret and key serial in <pki_dir>/session."""

from __future__ import annotations

import asyncio
import os
import stat

import pytest

from rx.master.store import SessionKeys, StoreError
from rx.master.store.file_session import FileSessionStore
from rx.transport.codec import decode, encode
from rx.transport.handshake import publish_key, request_key
from rx.transport.sizes import KEY_BYTES


async def _opened(path) -> FileSessionStore:
    s = FileSessionStore(path)
    await s.prepare()
    return s


@pytest.fixture
def store(tmp_path) -> FileSessionStore:
    return asyncio.run(_opened(tmp_path))


async def test_created_with_a_random_odd_serial_and_a_private_file(store, tmp_path):
    path = tmp_path / "session"
    keys = await store.current()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert 1 <= keys.serial < 2**32 and keys.serial % 2 == 1 and len(keys.secret) == KEY_BYTES
    assert keys.publish_key == publish_key(keys.secret, keys.serial)
    assert keys.created == os.stat(path).st_mtime
    assert decode(path.read_bytes()) == {"secret": keys.secret, "serial": keys.serial}
    (tmp_path / "x").mkdir()
    other = await (await _opened(tmp_path / "x")).current()
    assert other.serial != keys.serial or other.secret != keys.secret


async def test_prepare_keeps_an_existing_session(store, tmp_path):
    first = await store.current()
    await store.prepare()
    assert await FileSessionStore(tmp_path).current() == first


async def test_second_process_loads_the_same_secret(store, tmp_path):
    assert await FileSessionStore(tmp_path).current() == await store.current()


async def test_secrets_differ_between_masters(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, b = [await (await _opened(tmp_path / d)).current() for d in "ab"]
    assert a.secret != b.secret and a.publish_key != b.publish_key


async def test_rotate_changes_publish_and_request_keys(store):
    before = await store.current()
    after = await store.rotate()
    assert after == await store.current()
    assert after.serial == before.serial + 1 and after.secret == before.secret
    assert after.publish_key != before.publish_key
    assert after.publish_key == publish_key(before.secret, before.serial + 1)
    assert request_key(after.secret, after.serial, "web1") != request_key(before.secret, before.serial, "web1")
    assert after.created >= before.created


async def test_other_processes_see_a_rotation(store, tmp_path):
    reader, writer = FileSessionStore(tmp_path), FileSessionStore(tmp_path)
    old = await reader.current()
    await writer.rotate()
    new = await reader.current()  # the changed file is noticed
    assert new.serial == old.serial + 1 and new.publish_key == (await writer.current()).publish_key != old.publish_key


async def test_rotations_from_several_instances_accumulate(store, tmp_path):
    first = (await store.current()).serial
    for other in [FileSessionStore(tmp_path) for _ in range(3)]:
        await other.rotate()
    keys = await store.current()
    assert keys.serial == first + 3
    assert len({publish_key(keys.secret, n) for n in range(first, first + 4)}) == 4


async def test_the_file_is_read_again_only_when_it_changed(store, tmp_path):
    path = tmp_path / "session"
    first = await store.current()
    assert await store.current() is first  # not re-read
    st = os.stat(path)
    with open(path, "r+b") as f:  # same inode and mtime: looks unchanged, so the cached keys stay
        f.write(encode({"secret": first.secret, "serial": first.serial + 10}))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert await store.current() is first
    assert (await FileSessionStore(tmp_path).current()).serial == first.serial + 10


async def test_rotate_keeps_the_file_private_and_leaves_no_temp_files(store, tmp_path):
    await store.rotate()
    assert stat.S_IMODE(os.stat(tmp_path / "session").st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".session.lock")) == ["session"]


async def test_no_session_file_is_a_store_error(tmp_path):
    with pytest.raises(StoreError, match="no session file"):
        await FileSessionStore(tmp_path).current()


async def test_rotating_before_the_master_ever_ran_makes_a_first_session(tmp_path):
    """rx-key -d/-r/--rotate on keys preseeded before rx-master first started: nothing to revoke yet."""
    keys = await FileSessionStore(tmp_path).rotate()
    assert keys == await FileSessionStore(tmp_path).current()
    assert stat.S_IMODE(os.stat(tmp_path / "session").st_mode) == 0o600


@pytest.mark.parametrize("content", [b"\xc1", encode([1]), encode({"secret": b"short", "serial": 1}),
                                     encode({"secret": b"s" * KEY_BYTES, "serial": "1"}), encode({"serial": 1})],
                         ids=["not-msgpack", "list", "short-secret", "str-serial", "no-secret"])
async def test_corrupt_session_file_is_a_store_error(tmp_path, content):
    (tmp_path / "session").write_bytes(content)
    for call in (FileSessionStore(tmp_path).current, FileSessionStore(tmp_path).rotate):
        with pytest.raises(StoreError, match="corrupt"):
            await call()


def test_session_keys_are_a_frozen_value():
    keys = SessionKeys(b"s" * KEY_BYTES, 1, b"p" * KEY_BYTES, 0.0)
    with pytest.raises(AttributeError):
        keys.serial = 2  # type: ignore[misc]
