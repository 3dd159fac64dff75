"""The master's file server on real directories: containment (symlinks out of the root, FIFOs, ignores),
several roots, prefixes, bounded reads that notice a changing file, the hash cache, and pushed files."""

from __future__ import annotations

import hashlib
import os

import pytest

from rx.master import filehash
from rx.master.filehash import HashCache
from rx.master.filerecv import FileRecv, PushRefused, RecvSettings
from rx.master.fileserver import FileServer, FileServerError, FileServerSettings
from rx.transport.filemsgs import MAX_LIST_ENTRIES, PushRequest
from tests.support.procs import wait_for


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


@pytest.fixture
def tree(tmp_path):
    """Two roots of `base`, one of `dev`, and a secret outside them all."""
    one, two, dev, outside = (tmp_path / n for n in ("one", "two", "dev", "outside"))
    for d in (one / "sub", one / "empty", one / "_modules" / "pkg", two, dev, outside):
        d.mkdir(parents=True)
    (one / "a.txt").write_bytes(b"one a")
    (one / "sub" / "b.txt").write_bytes(b"b")
    (one / "_modules" / "mymod.py").write_bytes(b"def hi():\n    return 1\n")
    (one / "_modules" / "pkg" / "deep.py").write_bytes(b"x = 1\n")
    (two / "a.txt").write_bytes(b"two a")
    (two / "only2.txt").write_bytes(b"2")
    (dev / "a.txt").write_bytes(b"dev a")
    (outside / "secret").write_bytes(b"master secret")
    (one / "link_out").symlink_to(outside / "secret")
    (one / "dir_out").symlink_to(outside)
    (one / "link_in").symlink_to(one / "sub" / "b.txt")
    (one / "loop").symlink_to(one)
    os.mkfifo(one / "fifo")
    return tmp_path


def server(tree, **kw) -> FileServer:
    settings = dict(roots={"base": (str(tree / "one"), str(tree / "two")), "dev": (str(tree / "dev"),)},
                    hash_dir=str(tree / "hashes"))
    return FileServer(FileServerSettings(**{**settings, **kw}))


def test_first_root_wins_and_envs_are_separate(tree):
    fs = server(tree)
    assert fs.stat("base", "a.txt").sha256 == sha(b"one a")
    assert fs.stat("base", "only2.txt").sha256 == sha(b"2")
    assert fs.stat("dev", "a.txt").sha256 == sha(b"dev a")
    assert fs.stat("dev", "only2.txt").kind == "missing"
    listing = fs.list("base", "")
    assert listing.files["a.txt"] == (5, sha(b"one a"))
    assert {"a.txt", "only2.txt", "sub/b.txt", "_modules/mymod.py", "link_in"} <= set(listing.files)
    assert {"sub", "empty", "_modules", "_modules/pkg"} <= set(listing.dirs)


def test_missing_environment_is_a_clear_error(tree):
    with pytest.raises(FileServerError, match="no environment 'prod'.*environments: base, dev"):
        server(tree).stat("prod", "a.txt")


def test_symlinks_out_of_the_root_are_not_served_by_default(tree):
    fs = server(tree)
    for rel in ("link_out", "dir_out/secret"):
        assert fs.stat("base", rel).kind == "missing"
        assert fs.read("base", rel, 0, 100, 13, 0).problem == "missing"
    names = set(fs.list("base", "").files)
    assert not any("secret" in n or n == "link_out" for n in names)
    assert fs.stat("base", "link_in").sha256 == sha(b"b")  # a link inside the root is followed


def test_fileserver_followsymlinks_serves_links_out(tree):
    fs = server(tree, follow_symlinks=True)
    assert fs.stat("base", "link_out").sha256 == sha(b"master secret")
    assert "dir_out/secret" in fs.list("base", "").files


def test_a_fifo_is_never_opened(tree):
    fs = server(tree)
    assert fs.stat("base", "fifo").kind == "missing"  # would block a worker forever if opened
    assert "fifo" not in fs.list("base", "").files


def test_ignore_regex_and_glob(tree):
    fs = server(tree, ignore_regex=(r"\.txt$",), ignore_glob=("_modules*",))
    assert fs.stat("base", "a.txt").kind == "missing"
    assert fs.stat("base", "_modules/mymod.py").kind == "missing"
    listing = fs.list("base", "")
    assert not [n for n in listing.files if n.endswith(".txt") or n.startswith("_modules")]
    assert "_modules" not in listing.dirs
    fs = server(tree, ignore_glob=("sub",))
    assert fs.stat("base", "sub/b.txt").kind == "missing"  # an ignored directory hides what is in it


def test_prefix_is_a_string_prefix_and_a_trailing_slash_means_the_directory(tree):
    (tree / "one" / "sub2").mkdir()
    (tree / "one" / "sub2" / "c").write_bytes(b"c")
    fs = server(tree)
    assert set(fs.list("base", "sub").files) == {"sub/b.txt", "sub2/c"}
    assert set(fs.list("base", "sub/").files) == {"sub/b.txt"}
    assert set(fs.list("base", "_modules/").files) == {"_modules/mymod.py", "_modules/pkg/deep.py"}
    assert fs.special_files("modules") == {"mymod.py": str(tree / "one" / "_modules" / "mymod.py")}
    assert fs.special_files("runners") == {}


def test_stat_of_a_directory(tree):
    assert server(tree).stat("base", "sub").kind == "dir"


def test_reads_are_bounded_and_notice_a_changing_file(tree):
    big = tree / "one" / "big"
    big.write_bytes(os.urandom(10_000))
    fs = server(tree, buffer_size=4096)
    st = os.stat(big)
    chunk = fs.read("base", "big", 0, 8 * 2**20, st.st_size, st.st_mtime_ns)
    assert len(chunk.data) == 4096 and chunk.data == big.read_bytes()[:4096]
    with open(big, "ab") as f:
        f.write(b"more")
    changed = fs.read("base", "big", 4096, 4096, st.st_size, st.st_mtime_ns)
    assert changed.problem == "changed" and not changed.data and "10000 bytes, now 10004" in changed.message
    big.unlink()
    assert fs.read("base", "big", 0, 4096, st.st_size, st.st_mtime_ns).problem == "missing"


def test_too_many_entries_asks_for_a_prefix(tree, monkeypatch):
    monkeypatch.setattr("rx.master.fileserver.MAX_LIST_ENTRIES", 3)
    with pytest.raises(FileServerError, match="longer prefix"):
        server(tree).list("base", "")
    assert MAX_LIST_ENTRIES > 3


# ---------------------------------------------------------------- hash cache

def test_hashes_are_cached_by_stat_and_shared_on_disk(tree, monkeypatch):
    calls = []
    real = filehash.sha256_file
    monkeypatch.setattr(filehash, "sha256_file", lambda fd: calls.append(fd) or real(fd))
    fs = server(tree)
    fs.list("base", "")
    first = len(calls)
    assert first >= 5
    fs.list("base", "")
    assert len(calls) == first  # nothing hashed again
    other = server(tree)  # another worker: reads the shared entries
    other.list("base", "")
    assert len(calls) == first
    (tree / "one" / "a.txt").write_bytes(b"one A")  # same size, new content (ctime changes)
    assert other.stat("base", "a.txt").sha256 == sha(b"one A")
    assert len(calls) == first + 1


def test_big_files_are_hashed_in_the_background(tree):
    big = tree / "one" / "big"
    data = os.urandom(300_000)
    big.write_bytes(data)
    hashes = HashCache(str(tree / "hashes"), budget=100_000)
    fs = FileServer(FileServerSettings(roots={"base": (str(tree / "one"),)}), hashes)
    first = fs.stat("base", "big")
    assert first.kind == "file" and first.sha256 is None  # the worker did not hash 300 kB inline
    assert wait_for(lambda: fs.stat("base", "big").sha256, what="the background hash") == sha(data)
    listing = fs.list("base", "")
    assert listing.files["big"] == (300_000, sha(data))
    fs.close()


def test_a_file_locked_by_another_worker_is_left_to_it(tree):
    import fcntl
    big = tree / "one" / "big"
    big.write_bytes(b"x" * 1000)
    hashes = HashCache(str(tree / "hashes"), budget=10)
    entry = hashes._entry(os.path.realpath(big))
    os.makedirs(os.path.dirname(entry), exist_ok=True)
    with open(entry + ".lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert hashes._hash(os.path.realpath(big), filehash.stat_key(os.stat(big)), lock=True) is None
    assert hashes._hash(os.path.realpath(big), filehash.stat_key(os.stat(big)), lock=True) == sha(b"x" * 1000)


# ---------------------------------------------------------------- pushed files

def recv(tmp_path, enabled=True, max_bytes=100) -> FileRecv:
    return FileRecv(RecvSettings(enabled, max_bytes, str(tmp_path / "minions")))


def test_push_is_off_by_default_and_size_limited(tmp_path):
    with pytest.raises(PushRefused, match="file_recv is off"):
        recv(tmp_path, enabled=False).receive("m1", PushRequest("x", 0, 1, b"x"))
    with pytest.raises(PushRefused, match="file_recv_max_size"):
        recv(tmp_path).receive("m1", PushRequest("x", 0, 101, b"x"))
    assert not (tmp_path / "minions" / "m1" / "files" / "x").exists()


def test_push_in_chunks_with_a_resent_chunk(tmp_path):
    r = recv(tmp_path)
    assert r.receive("m1", PushRequest("var/log/app.log", 0, 6, b"abc")).received == 3
    assert r.receive("m1", PushRequest("var/log/app.log", 0, 6, b"abc")).received == 3  # a lost reply: sent again
    with pytest.raises(PushRefused, match="offset 5"):
        r.receive("m1", PushRequest("var/log/app.log", 5, 6, b"f"))
    done = r.receive("m1", PushRequest("var/log/app.log", 3, 6, b"def"))
    assert done.done and done.received == 6
    stored = tmp_path / "minions" / "m1" / "files" / "var" / "log" / "app.log"
    assert stored.read_bytes() == b"abcdef" and stored.stat().st_mode & 0o777 == 0o600
    assert r.receive("m1", PushRequest("empty", 0, 0, b"")).done


def test_push_never_follows_a_symlink_out(tmp_path):
    r = recv(tmp_path)
    r.receive("m1", PushRequest("ok", 0, 1, b"x"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "minions" / "m1" / "files" / "evil").symlink_to(elsewhere)
    with pytest.raises(PushRefused, match="not a directory"):
        r.receive("m1", PushRequest("evil/x", 0, 1, b"x"))
    assert list(elsewhere.iterdir()) == []
