"""rx.modules.file on real files under tmp_path, with Salt's return shapes."""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import stat
import subprocess
import time

import pytest

from rx.modules import CommandError
from rx.modules import file

ROOT = os.geteuid() == 0


def test_exists_read_write_append_prepend(tmp_path):
    p = str(tmp_path / "f")
    assert file.file_exists(p) is False and file.directory_exists(str(tmp_path)) is True
    assert file.write(p, "one", "two") == f'Wrote 2 lines to "{p}"'
    assert file.read(p) == "one\ntwo\n" and file.file_exists(p) and not file.directory_exists(p)
    with open(p, "a") as f:
        f.write("no-newline")
    assert file.append(p, "three") == f'Wrote 1 lines to "{p}"'
    assert file.prepend(p, "zero") == f'Prepended 1 lines to "{p}"'
    assert file.read(p) == "zero\none\ntwo\nno-newline\nthree\n"
    assert file.append(str(tmp_path / "new"), "a") and file.read(str(tmp_path / "new")) == "a\n"
    assert file.line_count(p) == 5


def test_read_keeps_bytes_that_are_not_utf8(tmp_path):
    p = tmp_path / "bin"
    p.write_bytes(b"ok \xff\xfe end")
    assert file.read(str(p)) == "ok \ufffd\ufffd end"
    assert file.read(str(p), binary=True) == b"ok \xff\xfe end"


def test_read_refuses_a_file_too_large_to_return(tmp_path):
    p = tmp_path / "big"
    with open(p, "wb") as f:
        f.truncate(9_000_000)
    with pytest.raises(CommandError, match="over the 8000000-byte limit"):
        file.read(str(p))


def test_touch_sets_times(tmp_path):
    p = str(tmp_path / "t")
    assert file.touch(p) is True and os.path.isfile(p)
    file.touch(p, atime=1_000_000_000, mtime=1_200_000_000)
    st = os.stat(p)
    assert (st.st_atime, st.st_mtime) == (1_000_000_000, 1_200_000_000)
    with pytest.raises(CommandError, match="epoch seconds"):
        file.touch(p, mtime="yesterday")


def test_copy_move_remove(tmp_path):
    src = tmp_path / "src"
    src.write_text("data")
    src.chmod(0o640)
    assert file.copy(str(src), str(tmp_path / "dst")) is True
    assert (tmp_path / "dst").read_text() == "data" and stat.S_IMODE((tmp_path / "dst").stat().st_mode) == 0o640
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "x").write_text("x")
    with pytest.raises(CommandError, match="recurse=True"):
        file.copy(str(tree), str(tmp_path / "tree2"))
    assert file.copy(str(tree), str(tmp_path / "tree2"), recurse=True) and (tmp_path / "tree2/sub/x").exists()
    (tmp_path / "tree2" / "stale").write_text("old")
    file.copy(str(tree), str(tmp_path / "tree2"), recurse=True, remove_existing=True)
    assert not (tmp_path / "tree2" / "stale").exists()
    moved = file.move(str(tmp_path / "dst"), str(tmp_path / "moved"))
    assert moved == {"result": True, "comment": f"'{tmp_path}/dst' moved to '{tmp_path}/moved'"}
    assert file.remove(str(tmp_path / "moved")) is True and file.remove(str(tmp_path / "moved")) is False
    assert file.remove(str(tmp_path / "tree2")) is True and not (tmp_path / "tree2").exists()
    with pytest.raises(CommandError, match="does not exist"):
        file.move(str(tmp_path / "nothing"), str(tmp_path / "x"))


def test_remove_refuses_the_root():
    with pytest.raises(CommandError, match="refusing to remove '/'"):
        file.remove("/")


def test_mkdir_and_makedirs(tmp_path):
    d = tmp_path / "a" / "b" / "c"
    assert file.mkdir(str(d), mode="0750") is True
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o750 for p in (d, d.parent, d.parent.parent))
    assert file.mkdir(str(d)) is True
    assert file.makedirs(str(tmp_path / "x" / "y" / "file.txt")) is True
    assert (tmp_path / "x" / "y").is_dir() and not (tmp_path / "x" / "y" / "file.txt").exists()
    assert file.makedirs(str(tmp_path / "x" / "y" / "z") + "/") is True and (tmp_path / "x/y/z").is_dir()
    assert file.makedirs(str(tmp_path / "x" / "y" / "f")) == f"Directory '{tmp_path}/x/y' already exists"
    (tmp_path / "plain").write_text("")
    with pytest.raises(CommandError, match="not a directory"):
        file.mkdir(str(tmp_path / "plain" / "sub"))


def test_symlink_and_readlink(tmp_path):
    target, link = tmp_path / "target", str(tmp_path / "link")
    target.write_text("t")
    assert file.symlink(str(target), link) is True and file.readlink(link) == str(target)
    with pytest.raises(CommandError, match="force=True"):
        file.symlink("/etc/hostname", link)
    assert file.symlink("other", link, force=True) and os.readlink(link) == "other"
    (tmp_path / "other").mkdir()
    assert file.readlink(link, canonicalize=True) == str(tmp_path / "other")
    with pytest.raises(CommandError, match="not a symlink"):
        file.readlink(str(target))
    with pytest.raises(CommandError, match="is a directory"):
        file.symlink(str(target), str(tmp_path / "other"), force=True)


def test_stats_has_salts_keys_and_values(tmp_path):
    p = tmp_path / "s"
    p.write_bytes(b"12345")
    p.chmod(0o604)
    st = os.stat(p)
    s = file.stats(str(p))
    assert set(s) == {"inode", "uid", "gid", "group", "user", "atime", "mtime", "ctime", "size", "mode", "type",
                      "target"}
    assert (s["size"], s["mode"], s["type"], s["inode"], s["target"]) == (5, "0604", "file", st.st_ino, str(p))
    assert s["user"] == pwd.getpwuid(st.st_uid).pw_name and s["group"] == grp.getgrgid(st.st_gid).gr_name
    assert file.stats(str(p), hash_type="md5")["sum"] == hashlib.md5(b"12345").hexdigest()
    assert file.stats(str(tmp_path))["type"] == "dir"
    os.symlink(str(p), tmp_path / "l")
    assert file.stats(str(tmp_path / "l"), follow_symlinks=False)["type"] == "link"
    with pytest.raises(CommandError, match="Path not found"):
        file.stats(str(tmp_path / "missing"))


def test_hash_mode_owner(tmp_path):
    p = tmp_path / "h"
    p.write_bytes(b"abc")
    assert file.get_hash(str(p)) == hashlib.sha256(b"abc").hexdigest()
    assert file.get_hash(str(p), form="sha512") == hashlib.sha512(b"abc").hexdigest()
    with pytest.raises(CommandError, match="hash type"):
        file.get_hash(str(p), form="crc99")
    for given, want in (("0640", "0640"), ("600", "0600"), (644, "0644"), ("4755", "4755")):
        assert file.set_mode(str(p), given) == want and file.get_mode(str(p)) == want
    for bad in ("0999", "rw-r--r--", "123456", True):
        with pytest.raises(CommandError, match="octal mode"):
            file.set_mode(str(p), bad)
    me = pwd.getpwuid(os.geteuid())
    assert file.get_user(str(p)) == me.pw_name and file.get_uid(str(p)) == me.pw_uid
    assert file.get_group(str(p)) == grp.getgrgid(os.getegid()).gr_name and file.get_gid(str(p)) == os.getegid()


@pytest.mark.skipif(not ROOT, reason="chown to another user needs root")
def test_chown(tmp_path):
    p = tmp_path / "c"
    p.write_text("")
    assert file.chown(str(p), "nobody", "") is True
    assert file.get_user(str(p)) == "nobody" and file.get_gid(str(p)) == 0
    assert file.chown(str(p), None, 65534) is True and file.get_gid(str(p)) == 65534
    with pytest.raises(CommandError, match="user 'rx-no-such-user' does not exist"):
        file.chown(str(p), "rx-no-such-user", "root")


def test_find(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "x.log").write_text("1" * 2048)
    (tmp_path / "a" / "b" / "y.LOG").write_text("")
    (tmp_path / "a" / "b" / "z.txt").write_text("")
    os.symlink("x.log", tmp_path / "a" / "link.log")
    old = tmp_path / "a" / "old.log"
    old.write_text("")
    os.utime(old, (time.time() - 10 * 86400,) * 2)
    t = str(tmp_path)
    assert file.find(t, name="*.log") == [f"{t}/a/link.log", f"{t}/a/old.log", f"{t}/a/x.log"]
    assert file.find(t, iname="*.log", type="f") == [f"{t}/a/b/y.LOG", f"{t}/a/old.log", f"{t}/a/x.log"]
    assert file.find(t, type="l") == [f"{t}/a/link.log"]
    assert file.find(t, type="d", maxdepth=1) == [t, f"{t}/a"]
    assert file.find(t, type="d", mindepth=1) == [f"{t}/a", f"{t}/a/b"]
    assert file.find(t, size="+1k", type="f") == [f"{t}/a/x.log"]
    assert file.find(t, mtime="+7", type="f") == [f"{t}/a/old.log"]
    assert file.find(t, regex=r".*/b/.*\.txt") == [f"{t}/a/b/z.txt"]
    assert file.find(t, user=pwd.getpwuid(os.geteuid()).pw_name, name="z.txt") == [f"{t}/a/b/z.txt"]
    assert file.find(f"{t}/missing") == []
    with pytest.raises(CommandError, match="unsupported option"):
        file.find(t, exec="rm {}")
    with pytest.raises(CommandError, match="type="):
        file.find(t, type="q")


def test_grep_contains_search_replace(tmp_path):
    p = tmp_path / "conf"
    p.write_text("PermitRootLogin yes\n#Port 22\nUser alice\n")
    g = file.grep(str(p), "^#Port")
    assert set(g) == {"pid", "retcode", "stdout", "stderr"} and (g["retcode"], g["stdout"]) == (0, "#Port 22")
    g = file.grep(str(p), "user", "-i")
    assert (g["retcode"], g["stdout"]) == (0, "User alice")
    assert file.grep(str(p), "absent")["retcode"] == 1
    assert file.grep(str(tmp_path / "co*"), "alice")["stdout"] == "User alice"
    with pytest.raises(CommandError, match="must start with '-'"):
        file.grep(str(p), "x", "/etc/shadow")
    assert file.contains(str(p), "Port 22") is True and file.contains(str(p), "Port 23") is False
    assert file.search(str(p), r"^User \w+$") is True and file.search(str(p), "^Port") is False
    diff = file.replace(str(p), r"^PermitRootLogin .*", "PermitRootLogin no")
    assert "-PermitRootLogin yes\n+PermitRootLogin no" in diff
    assert p.read_text().startswith("PermitRootLogin no\n")
    assert (tmp_path / "conf.bak").read_text().startswith("PermitRootLogin yes")
    assert file.replace(str(p), "nothing-matches", "x") == ""
    inode = p.stat().st_ino
    assert file.replace(str(p), "^Banner .*", "Banner none", append_if_not_found=True, show_changes=False) is True
    assert p.read_text().endswith("User alice\nBanner none\n") and p.stat().st_ino == inode
    assert file.replace(str(p), "alice", "bob", dry_run=True, show_changes=False) is True
    assert "alice" in p.read_text()
    assert file.replace(str(p), "^user ALICE$", "User carol", flags=["IGNORECASE", "MULTILINE"], backup=False,
                        show_changes=False) is True
    assert "User carol\n" in p.read_text() and "alice" in (tmp_path / "conf.bak").read_text()
    assert file.replace(str(tmp_path / "missing"), "a", "b", ignore_if_missing=True) is False
    with pytest.raises(CommandError, match="bad pattern"):
        file.replace(str(p), "(", "x")


def test_contains_finds_text_across_chunk_boundaries(tmp_path):
    p = tmp_path / "large"
    p.write_bytes(b"a" * ((1 << 20) - 3) + b"NEEDLE" + b"b" * 10)
    assert file.contains(str(p), "NEEDLE") and not file.contains(str(p), "NEEDLEX")


def test_line_count_agrees_with_wc(tmp_path):
    for text in ("", "a", "a\n", "a\nb", "a\nb\n\n"):
        (tmp_path / "l").write_text(text)
        wc = int(subprocess.run(["wc", "-l", str(tmp_path / "l")], capture_output=True, text=True).stdout.split()[0])
        assert file.line_count(str(tmp_path / "l")) == wc + (not text.endswith("\n") and text != "")


def test_basename_dirname():
    assert file.basename("/etc/ssh/sshd_config") == "sshd_config" and file.dirname("/etc/ssh/sshd_config") == "/etc/ssh"


PATH_FUNCS = [
    (file.file_exists, ()), (file.directory_exists, ()), (file.read, ()), (file.write, ("x",)),
    (file.append, ("x",)), (file.prepend, ("x",)), (file.touch, ()), (file.remove, ()), (file.mkdir, ()),
    (file.makedirs, ()), (file.readlink, ()), (file.stats, ()), (file.get_hash, ()), (file.get_mode, ()),
    (file.set_mode, ("0644",)), (file.chown, ("root", "root")), (file.get_user, ()), (file.get_group, ()),
    (file.find, ()), (file.grep, ("x",)), (file.contains, ("x",)), (file.replace, ("a", "b")),
    (file.search, ("a",)), (file.line_count, ()),
]


@pytest.mark.parametrize("func, rest", PATH_FUNCS, ids=[f.__name__ for f, _ in PATH_FUNCS])
@pytest.mark.parametrize("bad, message", [("etc/passwd", "relative"), ("/etc/pa\0sswd", "NUL byte"),
                                          ("", "absolute path"), (None, "absolute path")])
def test_relative_and_nul_paths_are_refused(func, rest, bad, message):
    with pytest.raises(CommandError, match=message):
        func(bad, *rest)


def test_two_path_functions_check_both(tmp_path):
    (tmp_path / "f").write_text("")
    for func in (file.copy, file.move):
        with pytest.raises(CommandError, match="dst 'rel' is relative"):
            func(str(tmp_path / "f"), "rel")
    with pytest.raises(CommandError, match="relative"):
        file.symlink("/etc/hostname", "rel")


def test_system_call_failures_are_clear(tmp_path):
    with pytest.raises(CommandError, match=f"{tmp_path}/missing: No such file or directory"):
        file.read(str(tmp_path / "missing"))
    with pytest.raises(CommandError, match="Is a directory"):
        file.write(str(tmp_path), "x")
