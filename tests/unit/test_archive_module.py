"""rx.modules.archive on real archives under tmp_path, and crafted archives that try to write
outside their destination (absolute names, '..', symlinks and hard links out, a path through a
symlink): each is refused and nothing lands outside."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import tarfile
import zipfile

import pytest

from rx.modules import CommandError
from rx.modules import archive


@pytest.fixture
def tree(tmp_path):
    src = tmp_path / "src"
    (src / "a" / "b").mkdir(parents=True)
    (src / "a" / "b" / "f").write_text("hello")
    (src / "a" / "b" / "f").chmod(0o640)
    os.symlink("f", src / "a" / "b" / "l")
    (src / "top").write_text("top")
    return src


@pytest.mark.parametrize("options, suffix, magic", [("cf", ".tar", None), ("czf", ".tgz", b"\x1f\x8b"),
                                                    ("-cjvf", ".tbz", b"BZh"), ("cJf", ".txz", b"\xfd7zXZ"),
                                                    ("caf", ".tar.gz", b"\x1f\x8b")])
def test_tar_create_list_extract(tmp_path, tree, options, suffix, magic):
    out = str(tmp_path / f"o{suffix}")
    names = archive.tar(options, out, "a,top", cwd=str(tree))
    assert names == ["a", "a/b", "a/b/f", "a/b/l", "top"]
    if magic:
        assert open(out, "rb").read(len(magic)) == magic
    listed = subprocess.run(["tar", "tf", out], capture_output=True, text=True, check=True).stdout.split()
    assert sorted(n.rstrip("/") for n in listed) == names
    assert archive.list(out) == ["a/", "a/b/", "a/b/f", "a/b/l", "top"]
    assert archive.tar("tf", out) == archive.list(out)
    dest = tmp_path / "dest"
    assert archive.tar("xf", out, dest=str(dest)) == names
    assert (dest / "a/b/f").read_text() == "hello" and os.readlink(dest / "a/b/l") == "f"
    assert stat.S_IMODE((dest / "a/b/f").stat().st_mode) == 0o640


def test_tar_absolute_sources_lose_their_leading_slash_and_globs_expand(tmp_path, tree):
    out = str(tmp_path / "abs.tar")
    names = archive.tar("cf", out, [str(tree / "to*"), str(tree / "a" / "b" / "f")])
    assert names == [str(tree / "top").lstrip("/"), str(tree / "a/b/f").lstrip("/")]


def test_untar_reads_an_archive_made_by_gnu_tar(tmp_path, tree):
    out = tmp_path / "gnu.tgz"
    subprocess.run(["tar", "czf", str(out), "-C", str(tree), "a", "top"], check=True)
    assert sorted(archive.untar(str(out), str(tmp_path / "x"))) == ["a", "a/b", "a/b/f", "a/b/l", "top"]
    assert (tmp_path / "x" / "top").read_text() == "top"


def test_list_verbose_has_salts_shape(tmp_path, tree):
    out = str(tmp_path / "v.tar")
    archive.tar("cf", out, "a,top", cwd=str(tree))
    assert archive.list(out, verbose=True) == {
        "dirs": ["a/", "a/b/"], "files": ["a/b/f", "top"], "links": ["a/b/l"],
        "top_level_dirs": ["a/"], "top_level_files": ["top"], "top_level_links": []}


@pytest.mark.parametrize("options, message", [("", "must not be empty"), ("cxf", "exactly one"),
                                              ("czjf", "exactly one"), ("cPf", "does not support 'P'"),
                                              ("--overwrite", "does not support")])
def test_bad_tar_options_are_clear_errors(tmp_path, tree, options, message):
    with pytest.raises(CommandError, match=message):
        archive.tar(options, str(tmp_path / "o.tar"), "top", cwd=str(tree))


def test_bad_sources_and_paths(tmp_path, tree):
    with pytest.raises(CommandError, match="relative: give cwd="):
        archive.tar("cf", str(tmp_path / "o.tar"), "top")
    with pytest.raises(CommandError, match="does not exist"):
        archive.tar("cf", str(tmp_path / "o.tar"), "nothing", cwd=str(tree))
    with pytest.raises(CommandError, match="sources"):
        archive.zip(str(tmp_path / "o.zip"), [])
    with pytest.raises(CommandError, match="relative"):
        archive.tar("cf", "rel.tar", "top", cwd=str(tree))
    with pytest.raises(CommandError, match="relative"):
        archive.unzip(str(tmp_path / "o.zip"), "rel/dest")
    (tmp_path / "junk").write_text("not an archive")
    with pytest.raises(CommandError, match="not a tar or zip archive"):
        archive.list(str(tmp_path / "junk"))
    with pytest.raises(CommandError, match="not a readable tar archive"):
        archive.untar(str(tmp_path / "junk"), str(tmp_path / "d"))


def test_zip_create_list_unzip(tmp_path, tree):
    out = str(tmp_path / "o.zip")
    assert archive.zip(out, ["a", "top"], cwd=str(tree)) == ["a/", "a/b/", "a/b/f", "a/b/l", "top"]
    listed = subprocess.run(["unzip", "-Z1", out], capture_output=True, text=True, check=True).stdout.split()
    assert listed == ["a/", "a/b/", "a/b/f", "a/b/l", "top"]
    assert archive.list(out) == listed
    assert archive.list(out, verbose=True)["links"] == ["a/b/l"]
    dest = tmp_path / "dest"
    assert archive.unzip(out, str(dest)) == listed
    assert (dest / "a/b/f").read_text() == "hello" and os.readlink(dest / "a/b/l") == "f"
    assert stat.S_IMODE((dest / "a/b/f").stat().st_mode) == 0o640
    assert archive.unzip(out, str(tmp_path / "d2"), excludes="top,a/b/l") == ["a/", "a/b/", "a/b/f"]
    assert not (tmp_path / "d2" / "top").exists()
    assert archive.unzip(out, str(tmp_path / "d3"), trim_output=2) == ["a/", "a/b/"]


def test_unzip_reads_an_archive_made_by_info_zip(tmp_path, tree):
    out = tmp_path / "info.zip"
    subprocess.run(["zip", "-qry", str(out), "a", "top"], cwd=tree, check=True)
    assert "a/b/f" in archive.unzip(str(out), str(tmp_path / "x"))
    assert (tmp_path / "x/a/b/f").read_text() == "hello" and os.readlink(tmp_path / "x/a/b/l") == "f"


# ------------------------------------------------------------ crafted archives

def _tar(path, *members):
    """A tar with members (name, kind, link): kind file, sym, lnk, dir or dev."""
    with tarfile.open(path, "w") as t:
        for name, kind, link in members:
            info = tarfile.TarInfo(name)
            data = None
            if kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, link
            elif kind == "lnk":
                info.type, info.linkname = tarfile.LNKTYPE, link
            elif kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            elif kind == "dev":
                info.type = tarfile.CHRTYPE
            else:
                data = b"pwned"
                info.size = len(data)
            t.addfile(info, io.BytesIO(data) if data else None)


EVIL_TARS = {
    "dotdot": ([("ok", "file", None), ("../outside", "file", None)], "outside"),
    "deep-dotdot": ([("a/../../outside", "file", None)], "outside"),
    "absolute": ([("/tmp/rx-absolute-outside", "file", None)], "absolute name"),
    "symlink-absolute": ([("l", "sym", "/etc")], "absolute path"),
    "symlink-up": ([("l", "sym", "../..")], "points outside"),
    "hardlink-out": ([("h", "lnk", "../outside")], "points outside"),
    "device": ([("null", "dev", None)], "device file"),
    "through-own-symlink": ([("d", "sym", "."), ("e", "sym", "d/.."), ("e/outside", "file", None)], "outside"),
}


@pytest.mark.parametrize("case", EVIL_TARS)
def test_a_tar_that_escapes_its_destination_is_refused(tmp_path, case):
    members, message = EVIL_TARS[case]
    path = tmp_path / "evil.tar"
    _tar(path, *members)
    dest = tmp_path / "box" / "dest"
    with pytest.raises(CommandError, match=message):
        archive.untar(str(path), str(dest))
    assert not (tmp_path / "box" / "outside").exists() and not (tmp_path / "outside").exists()
    assert not os.path.exists("/tmp/rx-absolute-outside")
    if case not in ("through-own-symlink",):
        assert os.listdir(dest) == [], "nothing of a refused archive is written"


def _zip(path, *members):
    """A zip with members (name, data, symlink target or None)."""
    with zipfile.ZipFile(path, "w") as z:
        for name, data, link in members:
            info = zipfile.ZipInfo(name)
            if link is not None:
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                data = link
            z.writestr(info, data)


EVIL_ZIPS = {
    "dotdot": ([("ok", "x", None), ("../outside", "pwned", None)], "outside"),
    "absolute": ([("/tmp/rx-absolute-outside", "pwned", None)], "absolute name"),
    "symlink-absolute": ([("l", "", "/etc")], "absolute path"),
    "symlink-up": ([("l", "", "../../..")], "points outside"),
    "through-own-symlink": ([("d", "", "."), ("e", "", "d/.."), ("e/outside", "pwned", None)], "symlink that leads"),
}


@pytest.mark.parametrize("case", EVIL_ZIPS)
def test_a_zip_that_escapes_its_destination_is_refused(tmp_path, case):
    members, message = EVIL_ZIPS[case]
    _zip(tmp_path / "evil.zip", *members)
    dest = tmp_path / "box" / "dest"
    with pytest.raises(CommandError, match=message):
        archive.unzip(str(tmp_path / "evil.zip"), str(dest))
    assert not (tmp_path / "box" / "outside").exists() and not os.path.exists("/tmp/rx-absolute-outside")


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_a_member_through_a_symlink_already_in_the_destination_is_refused(tmp_path, kind):
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    os.symlink(str(outside), dest / "escape")
    if kind == "tar":
        _tar(tmp_path / "a", ("escape/pwned", "file", None))
    else:
        _zip(tmp_path / "a", ("escape/pwned", "x", None))
    with pytest.raises(CommandError, match="refusing"):
        (archive.untar if kind == "tar" else archive.unzip)(str(tmp_path / "a"), str(dest))
    assert os.listdir(outside) == []


def test_setuid_bits_are_not_extracted(tmp_path):
    with tarfile.open(tmp_path / "s.tar", "w") as t:
        info = tarfile.TarInfo("suid")
        info.mode, info.size = 0o4755, 1
        t.addfile(info, io.BytesIO(b"x"))
    archive.untar(str(tmp_path / "s.tar"), str(tmp_path / "d"))
    assert not (tmp_path / "d" / "suid").stat().st_mode & stat.S_ISUID
