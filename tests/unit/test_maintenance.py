"""rx.master.maintenance: the key-change watch (a removed accepted key rotates the session serial
exactly once), scheduled rotation, job retention and nonce expiry, on real stores."""

from __future__ import annotations

import os
import time
import types

import pytest

from rx.config import load_master_config
from rx.master import maintenance
from rx.master.maintenance import PURGE_INTERVAL, KeyWatch, Maintenance
from rx.master.store import JobRecord, UnknownJob
from rx.master.store.file_session import FileSessionStore
from rx.transport.events import KEY_ROTATE, KeyRotateEvent
from rx.transport.ids import new_jid
from rx.transport.messages import Job


async def _watching(stores) -> KeyWatch:
    for i in ("a", "b"):
        await stores.keys.write("accepted", i, os.urandom(32))
    watch = KeyWatch(stores)
    assert await watch.check() is False  # the first look only learns the accepted set
    return watch


def _touch_dir(stores) -> None:
    """Make sure the accepted dir's mtime moved (whatever the filesystem's timestamp granularity)."""
    path = stores.keys.dirs["accepted"]
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))


async def test_removed_key_rotates(stores):
    watch = await _watching(stores)
    before = await stores.session.current()
    await stores.keys.remove("accepted", "a")
    _touch_dir(stores)
    assert await watch.check() is True
    after = await stores.session.current()
    assert after.serial == before.serial + 1 and after.publish_key != before.publish_key
    assert await watch.check() is False, "no second rotation for the same removal"


async def test_added_key_does_not_rotate(stores):
    watch = await _watching(stores)
    await stores.keys.write("accepted", "c", os.urandom(32))
    _touch_dir(stores)
    assert await watch.check() is False


async def test_removal_already_followed_by_a_rotation_is_not_rotated_again(stores, tmp_path):
    watch = await _watching(stores)
    await stores.keys.remove("accepted", "b")
    rotated = await FileSessionStore(tmp_path / "pki").rotate()  # what rx-key does
    _touch_dir(stores)
    assert await watch.check() is False
    assert (await stores.session.current()).serial == rotated.serial


# ---------------------------------------------------------------- the maintenance tick

class Bus:
    """An event sink that keeps what is fired."""

    def __init__(self) -> None:
        self.fired: list[tuple[str, dict]] = []

    async def fire(self, tag: str, data: dict) -> None:
        self.fired.append((tag, data))

    def close(self) -> None:
        pass

    def rotations(self) -> list[KeyRotateEvent]:
        return [KeyRotateEvent.from_wire(data) for tag, data in self.fired if tag == KEY_ROTATE]


async def _jobs(stores, *ages_hours: float) -> list[str]:
    jids = [new_jid(time.time() - age * 3600) for age in ages_hours]
    for jid in jids:
        job = Job(jid=jid, fun="test.ping", arg=[], kwarg={}, tgt="*", tgt_type="glob", ts=0.0)
        await stores.jobs.create_job(JobRecord(job, ["web1"]))
        await stores.jobs.store_return(jid, "web1", {"return": True})
    return jids


def _age_session(tmp_path, hours: float) -> None:
    then = time.time() - hours * 3600
    os.utime(tmp_path / "pki" / "session", (then, then))


@pytest.fixture
def maint(stores, tmp_path, monkeypatch):
    """Makes a Maintenance over `stores` with the given master settings, on a host up for `uptime` seconds."""
    def make(uptime: float = 1e6, **settings) -> Maintenance:
        monkeypatch.setattr(maintenance, "time", types.SimpleNamespace(time=time.time, monotonic=lambda: uptime))
        cfg = load_master_config(str(tmp_path), {"root_dir": str(tmp_path), **settings})
        return Maintenance(cfg, stores, Bus())
    return make


async def test_a_removed_key_rotates_and_tells_the_bus(stores, maint):
    work = maint()
    await stores.keys.write("accepted", "a", os.urandom(32))
    await work.tick()
    serial = (await stores.session.current()).serial
    await stores.keys.remove("accepted", "a")
    _touch_dir(stores)
    await work.tick()
    assert work.events.rotations() == [KeyRotateEvent(serial + 1, "key removed")]


@pytest.mark.parametrize("rotate_hours, age_hours, rotated", [(24, 25, True), (24, 23, False), (0, 1000, False)])
async def test_scheduled_rotation(stores, maint, tmp_path, rotate_hours, age_hours, rotated):
    work = maint(publish_key_rotate_hours=rotate_hours)
    serial = (await stores.session.current()).serial
    _age_session(tmp_path, age_hours)
    await work.tick()
    assert (await stores.session.current()).serial == serial + rotated
    assert work.events.rotations() == ([KeyRotateEvent(serial + 1, "schedule")] if rotated else [])


async def test_retention_removes_only_jobs_older_than_keep_jobs_hours(stores, maint):
    old, young = await _jobs(stores, 48, 25), await _jobs(stores, 23, 0)
    await maint(keep_jobs_hours=24).tick()
    assert await stores.jobs.jids() == young
    with pytest.raises(UnknownJob):
        await stores.jobs.returns(old[0])


async def test_keep_jobs_hours_0_keeps_everything(stores, maint):
    jids = await _jobs(stores, 24 * 3650, 0)
    await maint(keep_jobs_hours=0).tick()
    assert await stores.jobs.jids() == jids


async def test_nonces_older_than_twice_the_window_are_forgotten(stores, maint):
    now = time.time()
    assert await stores.replay.first_use(b"old" * 4, now - 700)
    assert await stores.replay.first_use(b"new" * 4, now - 500)
    await maint(auth_window_seconds=300).tick()
    assert await stores.replay.first_use(b"old" * 4, now) is True
    assert await stores.replay.first_use(b"new" * 4, now) is False


async def test_the_first_tick_purges_even_on_a_freshly_booted_host(stores, maint):
    await _jobs(stores, 48)
    young = await _jobs(stores, 0)
    await maint(keep_jobs_hours=24, uptime=PURGE_INTERVAL / 6).tick()
    assert await stores.jobs.jids() == young
