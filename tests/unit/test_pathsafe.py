"""rx.pathsafe (issue #8 item 15): a sock_dir, the directories above it and the master's socket must not
be controllable by another local user.  Real directories and sockets under tmp_path; the cases that
hand a path to another uid need root and are skipped (with the reason) otherwise."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from rx.pathsafe import UnsafePath, check_dir, check_socket

ME = os.geteuid()
OTHER = 65534 if ME != 65534 else 65533
needs_root = pytest.mark.skipif(ME != 0, reason="handing a path to another uid (chown) needs root")


def _make(base: Path, parent_mode: int = 0o755, parent_uid: int | None = None, dir_mode: int | None = 0o700,
          dir_uid: int | None = None) -> Path:
    parent = base / "run"
    parent.mkdir()
    sock_dir = parent / "master"
    if dir_mode is not None:
        sock_dir.mkdir()
        sock_dir.chmod(dir_mode)
        if dir_uid is not None:
            os.chown(sock_dir, dir_uid, -1)
    parent.chmod(parent_mode)
    if parent_uid is not None:
        os.chown(parent, parent_uid, -1)
    return sock_dir


CASES = [
    # (what, layout, refused with)
    ("a new sock_dir under a private parent", dict(dir_mode=None), None),
    ("a 0700 sock_dir", dict(), None),
    ("a 0755 sock_dir (nobody else can write it)", dict(dir_mode=0o755), None),
    ("a group-writable sock_dir", dict(dir_mode=0o770), "writable by group or others (mode 0770)"),
    ("a world-writable sock_dir", dict(dir_mode=0o777), "writable by group or others (mode 0777)"),
    ("a world-writable parent", dict(parent_mode=0o777), "/run' is writable by group or others and not sticky"),
    ("a group-writable parent, new sock_dir", dict(parent_mode=0o775, dir_mode=None), "not sticky (mode 0775)"),
    ("a sticky world-writable parent owned by us", dict(parent_mode=0o1777), None),
]
ROOT_CASES = [
    ("a sock_dir owned by another user", dict(dir_uid=OTHER), f"uid {OTHER}), not by"),
    ("a parent owned by another user", dict(parent_uid=OTHER), "the directory above it '"),
    ("a sticky parent owned by another user", dict(parent_mode=0o1777, parent_uid=OTHER), "is owned by"),
    ("a root-owned sticky parent, like /tmp", dict(parent_mode=0o1777, parent_uid=0), None),
]


def _check(tmp_path: Path, layout: dict, refused: str | None) -> None:
    sock_dir = _make(tmp_path, **layout)
    if refused is None:
        check_dir(str(sock_dir), {ME}, "sock_dir")
    else:
        with pytest.raises(UnsafePath, match="^sock_dir: ") as caught:
            check_dir(str(sock_dir), {ME}, "sock_dir")
        assert refused in str(caught.value)


@pytest.mark.parametrize("what, layout, refused", CASES, ids=[c[0] for c in CASES])
def test_sock_dir_and_its_parent(tmp_path, what, layout, refused):
    _check(tmp_path, layout, refused)


@needs_root
@pytest.mark.parametrize("what, layout, refused", ROOT_CASES, ids=[c[0] for c in ROOT_CASES])
def test_sock_dir_and_parent_owned_by_others(tmp_path, what, layout, refused):
    _check(tmp_path, layout, refused)


def test_every_directory_above_counts_not_only_the_parent(tmp_path):
    top = tmp_path / "shared"
    (top / "rx" / "run").mkdir(parents=True)
    top.chmod(0o777)
    with pytest.raises(UnsafePath, match="shared'.*writable by group or others"):
        check_dir(str(top / "rx" / "run" / "master"), {ME}, "sock_dir")


def test_a_symlink_is_followed_for_the_directories_above_but_refused_as_the_sock_dir(tmp_path):
    unsafe = tmp_path / "open"
    unsafe.mkdir()
    unsafe.chmod(0o777)
    (tmp_path / "private").mkdir(mode=0o700)
    (tmp_path / "private" / "run").symlink_to(unsafe)
    with pytest.raises(UnsafePath, match="open'.*writable by group or others"):
        check_dir(str(tmp_path / "private" / "run" / "master"), {ME}, "sock_dir")
    (tmp_path / "real").mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(UnsafePath, match="symbolic link"):
        check_dir(str(tmp_path / "link"), {ME}, "sock_dir")
    (tmp_path / "file").write_text("")
    with pytest.raises(UnsafePath, match="not a directory"):
        check_dir(str(tmp_path / "file"), {ME}, "sock_dir")


def test_the_socket_must_be_one_and_belong_to_the_owners(tmp_path):
    path = tmp_path / "master_req.ipc"
    with pytest.raises(UnsafePath, match="no socket"):
        check_socket(str(path), {ME}, "sock_dir")
    path.write_text("")
    with pytest.raises(UnsafePath, match="not a socket"):
        check_socket(str(path), {ME}, "sock_dir")
    path.unlink()
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))
        check_socket(str(path), {ME}, "sock_dir")
        with pytest.raises(UnsafePath, match="is owned by .* not by .*: it is not the master's"):
            check_socket(str(path), {ME + 1}, "sock_dir")
