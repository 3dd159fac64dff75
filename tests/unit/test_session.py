"""rx.master.session: the session secret and key serial in <pki_dir>/session."""

from __future__ import annotations

import os
import stat

import pytest

from rx.master.session import SessionState
from rx.transport.codec import decode
from rx.transport.crypto import KEY_BYTES
from rx.transport.handshake import publish_key, request_key


@pytest.fixture
def state(tmp_path) -> SessionState:
    s = SessionState(tmp_path)
    s.load_or_create()
    return s


def test_created_with_a_random_odd_serial_and_a_private_file(state, tmp_path):
    path = tmp_path / "session"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert 1 <= state.serial < 2**32 and state.serial % 2 == 1 and len(state.secret) == KEY_BYTES
    assert state.publish_key == publish_key(state.secret, state.serial)
    assert decode(path.read_bytes()) == {"secret": state.secret, "serial": state.serial}
    other = SessionState(tmp_path / "x")
    (tmp_path / "x").mkdir()
    other.load_or_create()
    assert other.serial != state.serial or other.secret != state.secret


def test_second_process_loads_the_same_secret(state, tmp_path):
    other = SessionState(tmp_path)
    other.load_or_create()
    assert (other.secret, other.serial, other.publish_key) == (state.secret, state.serial, state.publish_key)


def test_secrets_differ_between_masters(tmp_path):
    a, b = SessionState(tmp_path / "a"), SessionState(tmp_path / "b")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a.load_or_create()
    b.load_or_create()
    assert a.secret != b.secret and a.publish_key != b.publish_key


def test_rotate_changes_publish_and_request_keys(state):
    old_pub, old_req, secret = state.publish_key, request_key(state.secret, state.serial, "web1"), state.secret
    first = state.serial
    assert state.rotate() == first + 1
    assert state.serial == first + 1 and state.secret == secret
    assert state.publish_key != old_pub
    assert state.publish_key == publish_key(secret, first + 1)
    assert request_key(state.secret, state.serial, "web1") != old_req


def test_other_processes_see_a_rotation_on_refresh(state, tmp_path):
    reader = SessionState(tmp_path)
    reader.load_or_create()
    writer = SessionState(tmp_path)
    writer.load_or_create()
    old, first = reader.publish_key, reader.serial
    writer.rotate()
    reader.refresh()  # not forced: the changed file is noticed
    assert reader.serial == first + 1 and reader.publish_key == writer.publish_key != old


def test_rotations_from_several_instances_accumulate(state, tmp_path):
    others = [SessionState(tmp_path) for _ in range(3)]
    for o in others:
        o.load_or_create()
    first = state.serial
    for o in others:
        o.rotate()
    state.refresh()
    assert state.serial == first + 3
    assert len({publish_key(state.secret, n) for n in range(first, first + 4)}) == 4


def test_refresh_is_a_no_op_when_the_file_is_unchanged(state):
    first = state.serial
    state.serial = 99  # an in-memory value the file does not have
    state.refresh()
    assert state.serial == 99  # not re-read: the file did not change
    state.refresh(force=True)
    assert state.serial == first


def test_rotate_keeps_the_file_private_and_leaves_no_temp_files(state, tmp_path):
    state.rotate()
    assert stat.S_IMODE(os.stat(tmp_path / "session").st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".session.lock")) == ["session"]
