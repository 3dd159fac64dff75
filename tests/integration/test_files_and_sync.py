"""The file server, `cp` and module sync with real daemons: a 50 MB file with matching sha256 and bounded
worker memory, traversal in every path field, chunk bounds, a file changing while served, missing
environments, pushes, forged ids, and modules synced from `_modules`."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from rx.client.local import LocalClient
from rx.transport.filemsgs import FILE_LIST, FILE_RECV, FILE_STAT, MAX_CHUNK, SERVE_FILE
from tests.integration.conftest import FakeMinion
from tests.support.procs import peak_rss_kb, wait_for
from tests.support.sandbox import master_child

MiB = 1024 * 1024
SECRET = b"the master's own secret"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(MiB):
            h.update(chunk)
    return h.hexdigest()


@pytest.fixture
def srv(sandbox) -> Path:
    """The master's `base` root: a few files, `_modules`, and a symlink to a secret outside it."""
    root = sandbox.root / "srv"
    for d in ("sub", "_modules", "_grains"):
        (root / d).mkdir(parents=True)
    (root / "motd").write_text("hello\n")
    (root / "sub" / "b.txt").write_text("b\n")
    (root / "app.conf.j2").write_text("id={{ id }} os={{ grains['kernel'] }} port={{ port }}\n")
    outside = sandbox.root / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(SECRET)
    (root / "link_out").symlink_to(outside / "secret")
    return root


@pytest.fixture
def box(sandbox, srv):
    sandbox.start_master(file_roots={"base": [str(srv)]}, file_recv=True, file_recv_max_size=1)
    sandbox.start_minion("m1")
    return sandbox


def run(box, fun, *args, timeout=60, **kwargs) -> dict:
    with LocalClient(cfg=box.cfg) as c:
        return c.cmd("m1", fun, list(args), kwarg=kwargs, full_return=True, timeout=timeout)["m1"]


def workers(box) -> list[int]:
    return [master_child(box.master.pid, f"mworker-{i}") for i in range(2)]


def test_get_file_50mb_matches_and_memory_stays_bounded(box, srv, tmp_path):
    big = srv / "big.bin"
    with open(big, "wb") as f:
        for _ in range(50):
            f.write(os.urandom(MiB))
    assert run(box, "cp.hash_file", "salt://motd")["ret"]["hsum"] == sha256(srv / "motd")  # warm the workers
    pids = workers(box) + [box.minions["m1"].pid]
    before = [peak_rss_kb(p) for p in pids]
    dest = tmp_path / "y"
    r = run(box, "cp.get_file", "salt://big.bin", str(dest), timeout=120)
    assert r["retcode"] == 0, r
    assert r["ret"] == str(dest) and sha256(dest) == sha256(big)
    grown = [(peak_rss_kb(p) - b) // 1024 for p, b in zip(pids, before)]
    assert max(grown) < 25, f"peak RSS grew by {grown} MiB (workers, minion) for a 50 MiB file"
    cached = Path(run(box, "cp.is_cached", "salt://big.bin")["ret"])
    inode = cached.stat().st_ino
    assert run(box, "cp.get_file", "salt://big.bin", str(tmp_path / "z"), timeout=120)["retcode"] == 0
    assert cached.stat().st_ino == inode and sha256(tmp_path / "z") == sha256(big)  # served from the cache


def test_cp_functions(box, srv, tmp_path):
    r = run(box, "cp.get_template", "salt://app.conf.j2", str(tmp_path / "app.conf"), port=8080)
    assert r["retcode"] == 0, r
    assert (tmp_path / "app.conf").read_text() == f"id=m1 os={os.uname().sysname} port=8080\n"
    assert run(box, "cp.list_master")["ret"] == ["app.conf.j2", "motd", "sub/b.txt"]
    assert run(box, "cp.list_master_dirs")["ret"] == ["_grains", "_modules", "sub"]
    assert run(box, "cp.is_cached", "salt://motd")["ret"] == ""
    assert run(box, "cp.get_url", "rx://motd?saltenv=base", None)["ret"] == "hello\n"
    assert run(box, "cp.get_dir", "salt://sub", str(tmp_path))["ret"] == [str(tmp_path / "sub" / "b.txt")]
    cached = run(box, "cp.cache_dir", "salt://sub")["ret"]
    assert cached[0].endswith("/files/base/sub/b.txt")
    assert run(box, "cp.is_cached", "salt://sub/b.txt")["ret"] == cached[0]


def test_missing_file_and_environment_are_clear_errors(box, tmp_path):
    r = run(box, "cp.get_file", "salt://nope", str(tmp_path / "n"))
    assert r["retcode"] == 1 and "no file 'nope' in environment 'base'" in r["ret"]
    r = run(box, "cp.get_file", "salt://motd?saltenv=prod", str(tmp_path / "n"))
    assert r["retcode"] == 1 and "no environment 'prod' on the master (environments: base)" in r["ret"]
    r = run(box, "cp.get_file", "salt://motd", str(tmp_path / "n"), saltenv="prod")
    assert r["retcode"] == 1 and "no environment 'prod'" in r["ret"]
    assert not (tmp_path / "n").exists()


@pytest.mark.parametrize("url", ["salt://../outside/secret", "salt:///etc/passwd", "salt://link_out",
                                 "salt://sub/../../outside/secret", "salt://%2e%2e/outside/secret"])
def test_traversal_through_cp(box, tmp_path, url):
    r = run(box, "cp.get_file", url, str(tmp_path / "stolen"))
    assert r["retcode"] == 1, r
    assert not (tmp_path / "stolen").exists()


def test_traversal_in_every_path_field_of_the_wire(box, srv):
    fake = FakeMinion(box, "fake")
    assert fake.auth() == "accepted"
    try:
        bad = [
            (FILE_STAT, {"saltenv": "base", "path": "../outside/secret"}),
            (FILE_STAT, {"saltenv": "base", "path": "/etc/passwd"}),
            (FILE_STAT, {"saltenv": "base", "path": "motd\0.png"}),
            (FILE_STAT, {"saltenv": "base", "path": "sub/../../outside/secret"}),
            (FILE_STAT, {"saltenv": "../outside", "path": "secret"}),
            (FILE_LIST, {"saltenv": "base", "prefix": "../"}),
            (FILE_LIST, {"saltenv": "base", "prefix": "/etc"}),
            (FILE_LIST, {"saltenv": "/", "prefix": ""}),
            (SERVE_FILE, {"saltenv": "base", "path": "../outside/secret", "offset": 0, "size": 100,
                          "expect_size": len(SECRET), "expect_mtime_ns": 0}),
            (SERVE_FILE, {"saltenv": "base", "path": "/etc/passwd", "offset": 0, "size": 100, "expect_size": 0,
                          "expect_mtime_ns": 0}),
            (FILE_RECV, {"path": "../../../etc/cron.d/evil", "offset": 0, "total": 1, "data": b"x"}),
            (FILE_RECV, {"path": "/etc/cron.d/evil", "offset": 0, "total": 1, "data": b"x"}),
            (FILE_RECV, {"path": "a\0b", "offset": 0, "total": 1, "data": b"x"}),
        ]
        for cmd, load in bad:
            reply = fake.send_sealed(fake.sealed(cmd, load))
            assert reply["ok"] is False and reply["error"]["type"] == "bad_request", (cmd, load, reply)
            assert SECRET not in repr(reply).encode()
        st = os.stat(srv / "link_out")
        for cmd, load in [
            (FILE_STAT, {"saltenv": "base", "path": "link_out"}),
            (FILE_STAT, {"saltenv": "base", "path": "%2e%2e/outside/secret"}),  # not decoded: no such name
            (SERVE_FILE, {"saltenv": "base", "path": "link_out", "offset": 0, "size": 100,
                          "expect_size": st.st_size, "expect_mtime_ns": st.st_mtime_ns}),
        ]:
            reply = fake.send_sealed(fake.sealed(cmd, load))
            assert reply.get("kind", reply.get("problem")) == "missing" and not reply.get("data"), reply
        listing = fake.send_sealed(fake.sealed(FILE_LIST, {"saltenv": "base", "prefix": ""}))
        assert "link_out" not in listing["files"] and "motd" in listing["files"]
        wait_for(lambda: "must not contain '..'" in box.master.output(), what="the refusals in the master's log")
        assert not list(Path(box.cfg.minions_dir).rglob("evil"))
    finally:
        fake.close()


def test_chunks_are_bounded_and_a_changing_file_is_reported(box, srv):
    big = srv / "grow.bin"
    big.write_bytes(os.urandom(3 * MiB))
    fake = FakeMinion(box, "fake")
    assert fake.auth() == "accepted"
    try:
        st = wait_for(lambda: (s := fake.send_sealed(fake.sealed(FILE_STAT, {"saltenv": "base", "path": "grow.bin"})))
                      ["sha256"] and s, what="the master's hash")
        load = {"saltenv": "base", "path": "grow.bin", "offset": 0, "size": MAX_CHUNK, "expect_size": st["size"],
                "expect_mtime_ns": st["mtime_ns"]}
        first = fake.send_sealed(fake.sealed(SERVE_FILE, load))
        assert len(first["data"]) == MiB  # the master's file_buffer_size, whatever was asked
        too_big = fake.send_sealed(fake.sealed(SERVE_FILE, {**load, "size": MAX_CHUNK + 1}))
        assert too_big["ok"] is False and too_big["error"]["type"] == "bad_request"
        with open(big, "ab") as f:
            f.write(b"appended")
        changed = fake.send_sealed(fake.sealed(SERVE_FILE, {**load, "offset": MiB}))
        assert changed["problem"] == "changed" and changed["data"] == b"", changed
    finally:
        fake.close()


def test_a_file_changing_during_cp_get_file_is_not_served_corrupt(box, srv, tmp_path):
    big = srv / "busy.log"
    big.write_bytes(os.urandom(20 * MiB))
    stop = threading.Event()

    def keep_writing() -> None:
        while not stop.wait(0.002):
            with open(big, "ab") as f:
                f.write(b"line\n")
    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        r = run(box, "cp.get_file", "salt://busy.log", str(tmp_path / "copy"), timeout=120)
    finally:
        stop.set()
        writer.join()
    # caught while hashing (the stat keeps changing) or while serving (a chunk's check): reported either way
    assert r["retcode"] == 1, r
    assert "changed on the master while it was served" in r["ret"] or "keeps changing on the master" in r["ret"], r
    assert not (tmp_path / "copy").exists()


def test_forged_minion_id_is_refused_for_file_commands(box):
    fake = FakeMinion(box, "fake")
    assert fake.auth() == "accepted"
    try:
        for cmd, load in [(FILE_STAT, {"saltenv": "base", "path": "motd"}),
                          (FILE_RECV, {"path": "forged", "offset": 0, "total": 1, "data": b"x"})]:
            reply = fake.send_sealed(fake.sealed(cmd, load, claim_id="m1"))
            assert reply["ok"] is False and reply["error"]["type"] == "auth", reply
        assert not list(Path(box.cfg.minions_dir).rglob("forged"))
    finally:
        fake.close()


def test_push(box, tmp_path):
    small = tmp_path / "report.txt"
    small.write_bytes(os.urandom(300_000))
    assert run(box, "cp.push", str(small))["ret"] is True
    stored = Path(box.cfg.minions_dir) / "m1" / "files" / str(small).lstrip("/")
    assert sha256(stored) == sha256(small)
    assert run(box, "cp.push", str(small), upload_path="reports/today.txt")["ret"] is True
    assert (Path(box.cfg.minions_dir) / "m1" / "files" / "reports" / "today.txt").exists()
    huge = tmp_path / "huge"
    with open(huge, "wb") as f:
        f.truncate(MiB + 1)  # over file_recv_max_size: 1 (MiB)
    r = run(box, "cp.push", str(huge))
    assert r["retcode"] == 1 and "file_recv_max_size" in r["ret"]
    r = run(box, "cp.push", str(small), upload_path="../../../../etc/cron.d/evil")
    assert r["retcode"] == 1 and "'..'" in r["ret"]
    assert not list(Path(box.cfg.minions_dir).rglob("huge")) and not list(Path(box.cfg.minions_dir).rglob("evil"))


# ---------------------------------------------------------------- module sync

def test_sync_on_start_brings_modules_and_grains(sandbox, srv):
    (srv / "_modules" / "mymod.py").write_text("__all__ = ['hi']\n\n\ndef hi():\n    return 'hi from mymod'\n")
    (srv / "_modules" / "gone.py").write_text("x = 1\n")
    (srv / "_grains" / "site.py").write_text("def site():\n    return {'site': 'lab'}\n")
    sandbox.start_master(file_roots={"base": [str(srv)]})
    sandbox.start_minion("m1", sync_on_start=True)
    extmods = sandbox.minion_dir("m1") / "root" / "var" / "cache" / "rx" / "minion" / "extmods"
    assert sorted(os.listdir(extmods / "modules")) == ["gone.py", "mymod.py"]
    assert sha256(extmods / "modules" / "mymod.py") == sha256(srv / "_modules" / "mymod.py")
    assert sha256(extmods / "grains" / "site.py") == sha256(srv / "_grains" / "site.py")
    sandbox.stop_minions()
    (srv / "_modules" / "mymod.py").write_text("def hi():\n    return 'changed'\n")
    (srv / "_modules" / "gone.py").unlink()
    sandbox.start_minion("m1", sync_on_start=True)
    assert os.listdir(extmods / "modules") == ["mymod.py"]
    assert sha256(extmods / "modules" / "mymod.py") == sha256(srv / "_modules" / "mymod.py")


def test_synced_module_runs_after_saltutil_sync_modules(sandbox, srv):
    (srv / "_modules" / "mymod.py").write_text("__all__ = ['hi']\n\n\ndef hi():\n    return 'hi from mymod'\n")
    sandbox.start_master(file_roots={"base": [str(srv)]})
    sandbox.start_minion("m1")
    with LocalClient(cfg=sandbox.cfg) as c:
        assert c.cmd("m1", "saltutil.sync_modules") == {"m1": ["modules.mymod"]}
        assert c.cmd("m1", "mymod.hi") == {"m1": "hi from mymod"}
        r = sandbox.run_cli("rx", "m1", "mymod.hi", "--out", "json")
        assert r.returncode == 0 and '"hi from mymod"' in r.stdout


def test_cmd_script_runs_a_script_from_the_file_roots(sandbox, srv):
    (srv / "scripts").mkdir(exist_ok=True)
    (srv / "scripts" / "hi.sh").write_text("#!/bin/sh\necho \"hi $1 from $(basename \"$0\")\"\n")
    sandbox.start_master(file_roots={"base": [str(srv)]})
    sandbox.start_minion("m1")
    with LocalClient(cfg=sandbox.cfg) as c:
        r = c.cmd("m1", "cmd.script", ["salt://scripts/hi.sh", "there"])["m1"]
        missing = c.cmd("m1", "cmd.script", ["salt://scripts/nope.sh"], full_return=True)["m1"]
    assert r["retcode"] == 0 and r["stdout"] == "hi there from hi.sh"
    assert missing["retcode"] == 1 and "scripts/nope.sh" in missing["ret"]
