"""The file server's wire rules (transport.filemsgs): the path every request field must follow, URLs,
and the typed loads and replies, table-driven."""

from __future__ import annotations

import pytest

from rx.transport.errors import ProtocolError
from rx.transport.filemsgs import (MAX_CHUNK, MAX_LIST_ENTRIES, ChunkReply, ChunkRequest, FileListReply,
                                   FileListRequest, FileStatReply, FileStatRequest, PushRequest, check_env, clean_path,
                                   clean_prefix, split_url)


@pytest.mark.parametrize("given, clean", [
    ("a.txt", "a.txt"),
    ("sub/b.txt", "sub/b.txt"),
    ("sub//b.txt", "sub/b.txt"),
    ("./sub/./b.txt", "sub/b.txt"),
    ("sub/", "sub"),
    ("%2e%2e/%2e%2e/etc/passwd", "%2e%2e/%2e%2e/etc/passwd"),  # never decoded: a literal name
    ("..a/b..", "..a/b.."),
    ("dir\\..\\x", "dir\\..\\x"),  # a backslash is a character of the name on Linux
    ("ünïcödé/файл", "ünïcödé/файл"),
])
def test_clean_path_accepts(given, clean):
    assert clean_path(given) == clean


@pytest.mark.parametrize("given, why", [
    ("../etc/passwd", "'..'"),
    ("sub/../../etc/passwd", "'..'"),
    ("sub/..", "'..'"),
    ("..", "'..'"),
    ("/etc/passwd", "leading '/'"),
    ("//etc/passwd", "leading '/'"),
    ("a\0b", "NUL"),
    ("a.txt\0.png", "NUL"),
    ("a\nb", "control"),
    ("a\x1b[31mb", "control"),
    ("\udcff", "UTF-8"),
    ("x" * 4097, "4096 bytes"),
    ("x" * 256, "255 bytes"),
    ("", "must name a file"),
    ("./", "must name a file"),
    (b"a.txt", "must be a string"),
    (None, "must be a string"),
])
def test_clean_path_refuses(given, why):
    with pytest.raises(ProtocolError, match=why):
        clean_path(given)


def test_root_and_prefixes():
    assert clean_path("", root_ok=True) == ""
    assert clean_prefix("sub/") == "sub/"
    assert clean_prefix("sub") == "sub"
    assert clean_prefix("./") == ""
    with pytest.raises(ProtocolError):
        clean_prefix("../")


@pytest.mark.parametrize("env, ok", [
    ("base", True), ("prod-eu", True), ("v1.2", True), ("_x", True),
    ("", False), ("../x", False), ("a/b", False), (".hidden", False), ("-x", False), ("x" * 65, False), (3, False),
])
def test_env_names(env, ok):
    if ok:
        assert check_env(env) == env
    else:
        with pytest.raises(ProtocolError):
            check_env(env)


@pytest.mark.parametrize("url, path, env", [
    ("salt://a/b.txt", "a/b.txt", "base"),
    ("rx://a/b.txt", "a/b.txt", "base"),
    ("salt://a/b.txt?saltenv=dev", "a/b.txt", "dev"),
    ("rx://top.sls?saltenv=prod-eu", "top.sls", "prod-eu"),
])
def test_split_url(url, path, env):
    assert split_url(url, "base") == (path, env)


@pytest.mark.parametrize("url", [
    "/etc/passwd", "http://x/y", "salt://../etc/passwd", "salt:///etc/passwd", "salt://a?saltenv=../x",
    "salt://a?env=dev", "salt://a?saltenv=", "salt://", "rx://a\0b",
])
def test_split_url_refuses(url):
    with pytest.raises(ValueError):
        split_url(url, "base")


def test_requests_clean_every_path_field():
    assert FileListRequest.from_wire({"saltenv": "base", "prefix": "_modules/"}).prefix == "_modules/"
    assert FileStatRequest.from_wire({"saltenv": "base", "path": "a//b"}).path == "a/b"
    for bad in ({"saltenv": "base", "prefix": "../"}, {"saltenv": "../base", "prefix": ""},
                {"saltenv": "base", "prefix": "/"}):
        with pytest.raises(ProtocolError):
            FileListRequest.from_wire(bad)
    for bad in ({"saltenv": "base", "path": "/etc/shadow"}, {"saltenv": "base", "path": "a/../../b"},
                {"saltenv": "base", "path": "a\0"}, {"saltenv": "x/y", "path": "a"}, {"path": "a"}):
        with pytest.raises(ProtocolError):
            FileStatRequest.from_wire(bad)


def test_chunk_and_push_bounds():
    ok = ChunkRequest("base", "big", 0, MAX_CHUNK, 10, 5).to_wire()
    assert ChunkRequest.from_wire(ok).size == MAX_CHUNK
    for field, value in (("size", MAX_CHUNK + 1), ("size", 0), ("offset", -1), ("path", "../x"),
                         ("expect_size", 2**63)):
        with pytest.raises(ProtocolError, match=field):
            ChunkRequest.from_wire({**ok, field: value})
    push = PushRequest("var/log/x", 0, 3, b"abc").to_wire()
    assert PushRequest.from_wire(push).data == b"abc"
    for change in ({"path": "../../etc/cron.d/x"}, {"path": "/etc/x"}, {"total": 2}, {"data": b"x" * (MAX_CHUNK + 1)},
                   {"data": "text"}):
        with pytest.raises(ProtocolError):
            PushRequest.from_wire({**push, **change})


def test_replies_round_trip_and_refuse_bad_paths():
    sha = bytes(32)
    listing = FileListReply({"a": (1, sha), "b/c": (2, None)}, ["b"])
    back = FileListReply.from_wire(listing.to_wire())
    assert back == listing and back.pending == 1
    for bad in ({"../x": [1, sha]}, {"/etc/x": [1, sha]}, {"a": [1, b"short"]}, {"a": [-1, sha]}, {"a": [True, sha]}):
        with pytest.raises(ProtocolError):
            FileListReply.from_wire({"ok": True, "files": bad, "dirs": []})
    with pytest.raises(ProtocolError):
        FileListReply.from_wire({"ok": True, "files": {}, "dirs": ["../up"]})
    with pytest.raises(ProtocolError, match="entries"):
        FileListReply.from_wire({"ok": True, "files": {f"f{i}": [0, None] for i in range(MAX_LIST_ENTRIES + 1)},
                                 "dirs": []})
    st = FileStatReply("file", 3, 7, sha)
    assert FileStatReply.from_wire(st.to_wire()) == st
    with pytest.raises(ProtocolError):
        FileStatReply.from_wire({**st.to_wire(), "kind": "symlink"})
    assert ChunkReply.from_wire(ChunkReply(problem="changed", message="m").to_wire()).problem == "changed"
