"""Key-change watch: a removed accepted key rotates the session serial exactly once."""

from __future__ import annotations

import os

from rx.master.keys import KeyStore
from rx.master.maintenance import KeyWatch
from rx.master.session import SessionState


def _setup(tmp_path):
    keys = KeyStore(tmp_path)
    keys.ensure()
    for i in ("a", "b"):
        keys.write("accepted", i, os.urandom(32))
    session = SessionState(tmp_path)
    session.load_or_create()
    return keys, session, KeyWatch(keys, session)


def _touch_dir(keys: KeyStore) -> None:
    st = os.stat(keys.dirs["accepted"])
    os.utime(keys.dirs["accepted"], ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))


def test_removed_key_rotates(tmp_path):
    keys, session, watch = _setup(tmp_path)
    watch.check()
    serial = session.serial
    old_pub = session.publish_key
    keys.remove("accepted", "a")
    _touch_dir(keys)
    assert watch.check() is True
    assert session.serial == serial + 1 and session.publish_key != old_pub
    assert watch.check() is False, "no second rotation for the same removal"


def test_added_key_does_not_rotate(tmp_path):
    keys, session, watch = _setup(tmp_path)
    watch.check()
    keys.write("accepted", "c", os.urandom(32))
    _touch_dir(keys)
    assert watch.check() is False


def test_removal_already_followed_by_a_rotation_is_not_rotated_again(tmp_path):
    keys, session, watch = _setup(tmp_path)
    watch.check()
    keys.remove("accepted", "b")
    SessionState(tmp_path).rotate()  # what rx-key does
    _touch_dir(keys)
    serial = SessionState(tmp_path)
    serial.refresh(force=True)
    assert watch.check() is False
    session.refresh(force=True)
    assert session.serial == serial.serial
