"""Faults a production master and minion must survive, and start-up errors
that must be one clear line with exit 2."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import yaml

from rx.client.local import LocalClient
from tests.support.procs import children_of, wait_for


def _ping_all(box, expected: dict) -> bool:
    with LocalClient(cfg=box.cfg) as c:
        return c.cmd("*", "test.ping", timeout=1) == expected


def test_master_restart_minions_come_back_by_themselves(fleet):
    assert fleet.stop_master() == 0
    fleet.start_master()
    start = time.monotonic()
    wait_for(lambda: _ping_all(fleet, {"m1": True, "m2": True}), timeout=10, what="minions back after restart")
    assert time.monotonic() - start < 10


def test_killed_child_is_restarted(fleet):
    before = children_of(fleet.master.pid)
    assert len(before) == 2 + 2 + 1 + 1  # 2 workers, publisher, event publisher, request server, maintenance
    victim = before[0]
    os.kill(victim, signal.SIGKILL)
    after = wait_for(lambda: (c := children_of(fleet.master.pid)) and victim not in c and len(c) == len(before) and c,
                     timeout=3, what="child restarted")
    assert victim not in after
    wait_for(lambda: _ping_all(fleet, {"m1": True, "m2": True}), timeout=10, what="ping after child restart")
    assert "restarting it" in fleet.master.output()


def test_sigterm_stops_children_and_removes_ipc_files(fleet):
    cfg = fleet.cfg
    kids = children_of(fleet.master.pid)
    assert fleet.stop_master() == 0
    for pid in kids:
        assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
    for path in (cfg.ret_ipc, cfg.workers_ipc, cfg.workers_local_ipc, cfg.publish_pull_ipc, cfg.event_pull_ipc,
                 cfg.event_pub_ipc,
                 cfg.pidfile):
        assert not os.path.exists(path), path


def test_minion_killed_mid_job_is_reported_not_returned(fleet):
    proc = subprocess.Popen([sys.executable, "-m", "rx.client.cli", "-c", str(fleet.master_dir), "*", "test.sleep",
                             "30", "-t", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    m2 = fleet.minions["m2"]
    wait_for(lambda: children_of(m2.pid), what="job process on m2")
    m2.stop(signal.SIGKILL)  # its job dies with it (the job's lifeline), or the sandbox reports it left running
    os.kill(children_of(fleet.minions["m1"].pid)[0], signal.SIGKILL)  # m1's job dies too: returns an error
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, (out, err)
    assert "m2:\n    Minion did not return. [not connected]" in out
    assert "m1:" in out and "killed by SIGKILL" in out


def test_publish_with_wrong_root_key_exits_5_and_publishes_nothing(fleet, tmp_path):
    cfg = fleet.cfg
    other = tmp_path / "conf"
    other.mkdir()
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / ".root_key").write_text("not-the-key")
    conf = fleet.master_config(cachedir=str(cache), sock_dir=cfg.sock_dir)
    (other / "master").write_text(yaml.safe_dump(conf))
    jobs_before = set(os.listdir(cfg.jobs_dir))
    marker = tmp_path / "ran"
    r = fleet.run_cli("rx", "*", "cmd.run", f"touch {marker}", config_dir=other)
    assert r.returncode == 5, (r.stdout, r.stderr)
    assert "root key" in r.stderr and "Traceback" not in r.stderr
    assert set(os.listdir(cfg.jobs_dir)) == jobs_before
    with LocalClient(cfg=cfg) as c:
        assert c.cmd("*", "test.ping") == {"m1": True, "m2": True}  # later jobs run; the refused one never did
    assert not marker.exists()


def test_master_not_running_exits_5(sandbox):
    sandbox.write_master_config()
    r = sandbox.run_cli("rx", "*", "test.ping")
    assert r.returncode == 5 and "not running" in r.stderr


def _start_expect_exit_2(box, argv, what: str) -> str:
    p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert p.returncode == 2, (p.stdout, p.stderr)
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    assert what in lines[0]
    return lines[0]


def test_port_in_use_is_one_line_exit_2(sandbox):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", sandbox.ret_port))
        s.listen()
        sandbox.write_master_config()
        line = _start_expect_exit_2(sandbox, [sys.executable, "-m", "rx.master.daemon", "-c", str(sandbox.master_dir)],
                                    "ret_port")
        assert "in use" in line


def test_unreadable_key_dir_is_one_line_exit_2(sandbox, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    sandbox.write_master_config(pki_dir=str(blocker / "pki"))
    _start_expect_exit_2(sandbox, [sys.executable, "-m", "rx.master.daemon", "-c", str(sandbox.master_dir)], "pki_dir")
    conf = tmp_path / "minion-conf"
    conf.mkdir()
    (conf / "minion").write_text(yaml.safe_dump({"id": "x", "pki_dir": str(blocker / "pki"), "root_dir": str(tmp_path)}))
    _start_expect_exit_2(sandbox, [sys.executable, "-m", "rx.minion.daemon", "-c", str(conf)], "pki_dir")


def test_sock_dir_too_long_is_one_line_exit_2(sandbox):
    sandbox.write_master_config(sock_dir="/tmp/" + "s" * 120)
    _start_expect_exit_2(sandbox, [sys.executable, "-m", "rx.master.daemon", "-c", str(sandbox.master_dir)], "sock_dir")


@pytest.mark.parametrize("conf, key", [
    ({"publish_port": "abc"}, "publish_port"),
    ({"worker_processes": 0}, "worker_processes"),
    ({"auto_accept": "yes"}, "auto_accept"),
    ({"log_level": "loud"}, "log_level"),
])
def test_bad_master_config_is_one_line_exit_2(sandbox, conf, key):
    sandbox.write_master_config(**conf)
    line = _start_expect_exit_2(sandbox, [sys.executable, "-m", "rx.master.daemon", "-c", str(sandbox.master_dir)], key)
    assert str(sandbox.master_dir / "master") in line


def test_unknown_config_key_warns_with_suggestion(sandbox):
    sandbox.master_overrides = {"publsh_port": 1234}
    d = sandbox.start_master()
    assert "did you mean 'publish_port'" in d.output()


def _uid_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Uid:"):
                return int(line.split()[1])
    raise AssertionError("no Uid line")


def _world_readable_python() -> bool:
    """Can another user run this interpreter and import its packages (every parent dir o+x)?"""
    import zmq
    for top in (os.path.dirname(os.__file__), os.path.dirname(zmq.__file__), os.path.dirname(__file__)):
        path = top
        while path != "/":
            if not os.stat(path).st_mode & 0o001:
                return False
            path = os.path.dirname(path)
    return True


@pytest.mark.skipif(os.geteuid() != 0 or not _world_readable_python(),
                    reason="needs root, and a Python installation and checkout that user 'nobody' can read "
                           "(not the case when Python lives under a 0700 /root)")
def test_master_and_minion_switch_to_the_configured_user(sandbox):
    import pwd
    nobody = pwd.getpwnam("nobody")
    os.chmod(sandbox.root, 0o755)
    sandbox.start_master(user="nobody")
    sandbox.start_minion("m1", user="nobody")
    assert _uid_of(sandbox.master.pid) == nobody.pw_uid
    assert all(_uid_of(pid) == nobody.pw_uid for pid in children_of(sandbox.master.pid))
    assert _uid_of(sandbox.minions["m1"].pid) == nobody.pw_uid
    assert os.stat(sandbox.cfg.pki_dir).st_uid == nobody.pw_uid
    with LocalClient(cfg=sandbox.cfg) as c:
        assert c.cmd("m1", "cmd.run", ["id -un"]) == {"m1": "nobody"}


def test_unknown_user_is_one_line_exit_2(sandbox):
    sandbox.write_master_config(user="no-such-user-rx")
    _start_expect_exit_2(sandbox, [sys.executable, "-m", "rx.master.daemon", "-c", str(sandbox.master_dir)], "user")


def test_master_with_a_new_session_secret_minions_reauthenticate(fleet):
    """The session file is lost (same master key, same serial number, new secret): publications no longer
    open with the old key, so minions hold them, re-authenticate and run them."""
    from pathlib import Path
    from rx.transport.codec import decode, encode
    from rx.transport.crypto import write_secret
    assert fleet.stop_master() == 0
    path = Path(fleet.cfg.pki_dir) / "session"
    old = decode(path.read_bytes())
    write_secret(path, encode({"secret": os.urandom(32), "serial": old["serial"]}))
    fleet.start_master()
    wait_for(lambda: _ping_all(fleet, {"m1": True, "m2": True}), timeout=15, what="minions back on a new secret")
    assert "authenticated with the master" in fleet.minions["m1"].output().split("ready")[-1]


def test_first_job_after_a_master_restart_reaches_every_minion(fleet):
    """Published while the minions are still reconnecting: they catch up on reconnect, nothing is lost."""
    assert fleet.stop_master() == 0
    fleet.start_master()
    with LocalClient(cfg=fleet.cfg) as c:
        assert c.cmd("*", "test.ping", timeout=15) == {"m1": True, "m2": True}
