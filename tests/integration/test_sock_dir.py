"""Issue #8 item 15: another local user must not control the master's sock_dir.  The master refuses to
start on a sock_dir (or a directory above it) that others own or can write (exit 77); the client refuses
to send the root key when the sock_dir or `master_req.ipc` is not the master's (exit 5), and a socket
swapped in by another user never even gets a connection."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from rx.pathsafe import EXIT_UNSAFE

OTHER = 65534
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="handing the sock_dir to another uid (chown) needs root")


def _refused_start(box, sock_dir: Path) -> str:
    """rx-master's one-line refusal (it exits at once, before any child starts)."""
    r = box.run_cli("rx-master", timeout=60)
    assert r.returncode == EXIT_UNSAFE, (r.returncode, r.stderr)
    assert r.stderr.startswith("error: refusing to start: sock_dir: ") and str(sock_dir) in r.stderr, r.stderr
    assert not any(sock_dir.glob("*.ipc")), "nothing may be bound there"
    return r.stderr


def _ping(box) -> None:
    r = box.run_cli("rx", "*", "test.ping", "--out", "json")
    assert r.returncode == 0 and '"m1": true' in r.stdout, r.stderr


@pytest.mark.parametrize("mode, parent_mode, why", [
    (0o777, 0o755, "is writable by group or others (mode 0777)"),
    (0o770, 0o755, "is writable by group or others (mode 0770)"),
    (0o700, 0o777, "/rx' is writable by group or others and not sticky (mode 0777)"),
])
def test_master_refuses_a_sock_dir_others_can_write(sandbox, mode, parent_mode, why):
    sandbox.write_master_config()
    sock_dir = Path(sandbox.cfg.sock_dir)
    sock_dir.mkdir(parents=True)
    sock_dir.chmod(mode)
    sock_dir.parent.chmod(parent_mode)
    assert why in _refused_start(sandbox, sock_dir)
    sock_dir.chmod(0o700)
    sock_dir.parent.chmod(0o755)
    sandbox.start_master()
    sandbox.start_minion("m1")
    _ping(sandbox)


@needs_root
def test_master_refuses_a_sock_dir_another_user_owns(sandbox):
    sandbox.write_master_config()
    sock_dir = Path(sandbox.cfg.sock_dir)
    sock_dir.mkdir(parents=True, mode=0o700)
    os.chown(sock_dir, OTHER, -1)
    assert f"uid {OTHER}), not by" in _refused_start(sandbox, sock_dir)
    os.chown(sock_dir.parent, OTHER, -1)
    os.chown(sock_dir, 0, -1)
    assert f"the directory above it '{sock_dir.parent}' is owned by" in _refused_start(sandbox, sock_dir)
    os.chown(sock_dir.parent, 0, -1)
    sandbox.start_master()
    sandbox.start_minion("m1")
    _ping(sandbox)


def _client_refuses(box, why: str) -> None:
    r = box.run_cli("rx", "*", "test.ping")
    assert r.returncode == 5, (r.returncode, r.stderr)
    assert "rx: error: not sending the root key: sock_dir: " in r.stderr and why in r.stderr, r.stderr


@pytest.fixture
def one(sandbox):
    sandbox.start_master()
    sandbox.start_minion("m1")
    return sandbox


def test_client_refuses_a_sock_dir_others_can_write(one):
    sock_dir = Path(one.cfg.sock_dir)
    sock_dir.chmod(0o777)
    _client_refuses(one, "is writable by group or others (mode 0777)")
    sock_dir.chmod(0o700)
    sock_dir.parent.chmod(0o775)
    _client_refuses(one, "is writable by group or others and not sticky")
    sock_dir.parent.chmod(0o755)
    _ping(one)


@needs_root
def test_client_refuses_a_sock_dir_another_user_owns(one):
    sock_dir = Path(one.cfg.sock_dir)
    os.chown(sock_dir, OTHER, -1)
    _client_refuses(one, f"uid {OTHER}), not by")
    os.chown(sock_dir, 0, -1)
    _ping(one)


@needs_root
def test_client_never_sends_the_root_key_to_a_swapped_socket(one):
    """Another user's listener in place of master_req.ipc: the client refuses it and never connects."""
    real = Path(one.cfg.ret_ipc)
    aside = real.with_name("master_req.ipc.real")
    real.rename(aside)  # the master's socket keeps listening under the other name
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(str(real))
        listener.listen(16)
        listener.setblocking(False)
        os.chown(real, OTHER, -1)
        _client_refuses(one, f"the socket {str(real)!r} is owned by")
        with pytest.raises(BlockingIOError):
            listener.accept()  # a connection made by the client would be waiting here
    finally:
        listener.close()
        real.unlink(missing_ok=True)
        aside.rename(real)
    _ping(one)
