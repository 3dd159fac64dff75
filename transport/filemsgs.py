"""The file server's wire: minion -> master requests for the master's files (list, stat, fetch in
chunks) and for pushing a file to the master, with their replies; and the one rule every path from
a request must follow before anyone joins it to a directory (`clean_path`).

Paths travel as they are: nothing here or above percent-decodes them, so `%2e%2e` is a file name
with percent signs in it, never `..`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from rx.transport import fields as f
from rx.transport.errors import ProtocolError
from rx.transport.ids import ENV_RE

FILE_LIST = "_file_list"
FILE_STAT = "_file_hash"
SERVE_FILE = "_serve_file"
FILE_RECV = "_file_recv"
FILE_COMMANDS = (FILE_LIST, FILE_STAT, SERVE_FILE, FILE_RECV)

MAX_PATH_BYTES = 4096
MAX_NAME_BYTES = 255
MAX_CHUNK = 8 * 1024 * 1024
"""Largest chunk either side sends in one request or reply (the master serves at most its
`file_buffer_size`; a minion pushes 1 MiB chunks)."""
MAX_FILE_SIZE = 2**50
MAX_LIST_ENTRIES = 50_000
"""Most files plus directories one list reply holds; past it the master asks for a narrower prefix."""
SHA256_BYTES = 32
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def clean_path(value: Any, what: str = "path", *, root_ok: bool = False) -> str:
    """The canonical relative form of a path from a request (`a/b/c`: no empty or `.` parts), or
    ProtocolError: not a string, NUL or control characters, not UTF-8, too long, absolute, or with a
    `..` part.  `root_ok`: the empty path (the root itself) is allowed."""
    if not isinstance(value, str):
        raise ProtocolError(f"must be a string, got {type(value).__name__}", what)
    if "\0" in value:
        raise ProtocolError("must not contain NUL", what)
    if _CONTROL.search(value):
        raise ProtocolError("must not contain control characters", what)
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise ProtocolError("must be valid UTF-8", what) from None
    if size > MAX_PATH_BYTES:
        raise ProtocolError(f"must be at most {MAX_PATH_BYTES} bytes", what)
    if value.startswith("/"):
        raise ProtocolError("must be relative to the file root (no leading '/')", what)
    parts = [p for p in value.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ProtocolError("must not contain '..'", what)
    if any(len(p.encode()) > MAX_NAME_BYTES for p in parts):
        raise ProtocolError(f"each part must be at most {MAX_NAME_BYTES} bytes", what)
    if not parts and not root_ok:
        raise ProtocolError("must name a file", what)
    return "/".join(parts)


def clean_prefix(value: Any, what: str = "prefix") -> str:
    """A list prefix: a clean path that keeps a trailing `/` (so `sub/` does not match `sub2`)."""
    cleaned = clean_path(value, what, root_ok=True)
    return cleaned + "/" if cleaned and value.endswith("/") else cleaned


def check_env(value: Any, what: str = "saltenv") -> str:
    if not isinstance(value, str) or not ENV_RE.match(value):
        raise ProtocolError("must be an environment name: 1-64 letters, digits, '_', '.', '-' (not first)", what)
    return value


def split_url(url: str, saltenv: str, *, root_ok: bool = False) -> tuple[str, str]:
    """`salt://path` or `rx://path`, with an optional `?saltenv=env`: (clean path, environment).
    ValueError for anything else (a plain path is not a master file).  `root_ok`: `salt://` alone (the
    root) is allowed."""
    for scheme in ("salt://", "rx://"):
        if url.startswith(scheme):
            rest = url[len(scheme):]
            break
    else:
        raise ValueError(f"{url!r} is not a salt:// or rx:// URL")
    path, sep, query = rest.partition("?")
    if sep:
        key, eq, env = query.partition("=")
        if key != "saltenv" or not eq:
            raise ValueError(f"{url!r}: the only query a master file URL takes is ?saltenv=ENV")
        saltenv = env
    try:
        return clean_path(path, "url", root_ok=root_ok), check_env(saltenv)
    except ProtocolError as exc:
        raise ValueError(f"{url!r}: {exc}") from None


def is_master_url(url: Any) -> bool:
    return isinstance(url, str) and url.startswith(("salt://", "rx://"))


def _env(d: dict) -> str:
    return check_env(f.get(d, "saltenv", str))


def _size(d: dict, key: str, high: int = MAX_FILE_SIZE) -> int:
    return f.integer(d, key, 0, high)


# ---------------------------------------------------------------- requests

@dataclass(frozen=True)
class FileListRequest:
    """The files and directories of an environment whose path starts with `prefix` (a string prefix,
    as Salt's `cp.list_master`; `dir/` for one directory)."""

    saltenv: str
    prefix: str = ""

    def to_wire(self) -> dict:
        return {"saltenv": self.saltenv, "prefix": self.prefix}

    @classmethod
    def from_wire(cls, obj: Any) -> "FileListRequest":
        d = f.as_map(obj, "file list")
        return cls(saltenv=_env(d), prefix=clean_prefix(f.get(d, "prefix", str, default="")))


@dataclass(frozen=True)
class FileStatRequest:
    """Size, modification time and sha256 of one file."""

    saltenv: str
    path: str

    def to_wire(self) -> dict:
        return {"saltenv": self.saltenv, "path": self.path}

    @classmethod
    def from_wire(cls, obj: Any) -> "FileStatRequest":
        d = f.as_map(obj, "file stat")
        return cls(saltenv=_env(d), path=clean_path(f.get(d, "path", str)))


@dataclass(frozen=True)
class ChunkRequest:
    """`size` bytes of a file from `offset`, if the file still has the size and modification time
    its stat gave (`expect_size`, `expect_mtime_ns`): else the reply says it changed."""

    saltenv: str
    path: str
    offset: int
    size: int
    expect_size: int
    expect_mtime_ns: int

    def to_wire(self) -> dict:
        return {"saltenv": self.saltenv, "path": self.path, "offset": self.offset, "size": self.size,
                "expect_size": self.expect_size, "expect_mtime_ns": self.expect_mtime_ns}

    @classmethod
    def from_wire(cls, obj: Any) -> "ChunkRequest":
        d = f.as_map(obj, "chunk")
        return cls(saltenv=_env(d), path=clean_path(f.get(d, "path", str)), offset=_size(d, "offset"),
                   size=f.integer(d, "size", 1, MAX_CHUNK), expect_size=_size(d, "expect_size"),
                   expect_mtime_ns=f.integer(d, "expect_mtime_ns", -2**63, 2**63 - 1))


@dataclass(frozen=True)
class PushRequest:
    """One chunk of a file pushed to the master (`cp.push`): `data` goes at `offset` of the file that will
    be `total` bytes long and stored as `path` under the minion's own directory on the master."""

    path: str
    offset: int
    total: int
    data: bytes

    def to_wire(self) -> dict:
        return {"path": self.path, "offset": self.offset, "total": self.total, "data": self.data}

    @classmethod
    def from_wire(cls, obj: Any) -> "PushRequest":
        d = f.as_map(obj, "push")
        data = f.get(d, "data", bytes)
        if len(data) > MAX_CHUNK:
            raise ProtocolError(f"must be at most {MAX_CHUNK} bytes", "data")
        req = cls(path=clean_path(f.get(d, "path", str)), offset=_size(d, "offset"), total=_size(d, "total"),
                  data=data)
        if req.offset + len(data) > req.total:
            raise ProtocolError("the chunk goes past the announced total", "offset")
        return req


# ---------------------------------------------------------------- replies

@dataclass(frozen=True)
class FileListReply:
    """`files`: path -> (size, sha256 or None while the master is still hashing it); `dirs`: every
    directory under the prefix (empty ones included).  `pending` counts the files not hashed yet:
    ask again shortly for their hashes."""

    files: dict[str, tuple[int, bytes | None]] = field(default_factory=dict)
    dirs: list[str] = field(default_factory=list)

    @property
    def pending(self) -> int:
        return sum(1 for _, sha in self.files.values() if sha is None)

    def to_wire(self) -> dict:
        return {"ok": True, "files": {p: [s, h] for p, (s, h) in self.files.items()}, "dirs": self.dirs}

    @classmethod
    def from_wire(cls, obj: Any) -> "FileListReply":
        d = f.as_map(obj, "reply")
        files: dict[str, tuple[int, bytes | None]] = {}
        raw = f.get(d, "files", dict)
        dirs = f.str_list(d, "dirs")
        if len(raw) + len(dirs) > MAX_LIST_ENTRIES:
            raise ProtocolError(f"more than {MAX_LIST_ENTRIES} entries", "files")
        for path, entry in raw.items():
            if (not isinstance(entry, list) or len(entry) != 2 or not isinstance(entry[0], int)
                    or isinstance(entry[0], bool) or not 0 <= entry[0] <= MAX_FILE_SIZE
                    or not (entry[1] is None or (isinstance(entry[1], bytes) and len(entry[1]) == SHA256_BYTES))):
                raise ProtocolError("must be [size, sha256 or nil]", "files")
            files[clean_path(path, "files")] = (entry[0], entry[1])
        return cls(files=files, dirs=[clean_path(p, "dirs") for p in dirs])


@dataclass(frozen=True)
class FileStatReply:
    """`kind`: "file", "dir" or "missing" (with `message` saying what is missing); a file's sha256 is
    None while the master is still hashing it (ask again shortly)."""

    kind: str
    size: int = 0
    mtime_ns: int = 0
    sha256: bytes | None = None
    message: str = ""

    def to_wire(self) -> dict:
        return {"ok": True, "kind": self.kind, "size": self.size, "mtime_ns": self.mtime_ns, "sha256": self.sha256,
                "message": self.message}

    @classmethod
    def from_wire(cls, obj: Any) -> "FileStatReply":
        d = f.as_map(obj, "reply")
        kind = f.get(d, "kind", str)
        if kind not in ("file", "dir", "missing"):
            raise ProtocolError("must be file, dir or missing", "kind")
        sha = f.get(d, "sha256", (bytes, type(None)))
        if sha is not None and len(sha) != SHA256_BYTES:
            raise ProtocolError(f"must be {SHA256_BYTES} bytes", "sha256")
        return cls(kind=kind, size=_size(d, "size"), mtime_ns=f.integer(d, "mtime_ns", -2**63, 2**63 - 1),
                   sha256=sha, message=f.get(d, "message", str)[:1024])


@dataclass(frozen=True)
class ChunkReply:
    """The bytes asked for, or `problem` ("changed": the file is not the one its stat described; "missing")
    with a message."""

    data: bytes = b""
    problem: str = ""
    message: str = ""

    def to_wire(self) -> dict:
        return {"ok": True, "data": self.data, "problem": self.problem, "message": self.message}

    @classmethod
    def from_wire(cls, obj: Any) -> "ChunkReply":
        d = f.as_map(obj, "reply")
        problem = f.get(d, "problem", str)
        if problem not in ("", "changed", "missing"):
            raise ProtocolError("must be '', changed or missing", "problem")
        data = f.get(d, "data", bytes)
        if len(data) > MAX_CHUNK:
            raise ProtocolError(f"must be at most {MAX_CHUNK} bytes", "data")
        return cls(data=data, problem=problem, message=f.get(d, "message", str)[:1024])


@dataclass(frozen=True)
class PushReply:
    """How many bytes of the pushed file the master holds; `done` once the file is stored whole."""

    received: int
    done: bool = False

    def to_wire(self) -> dict:
        return {"ok": True, "received": self.received, "done": self.done}

    @classmethod
    def from_wire(cls, obj: Any) -> "PushReply":
        d = f.as_map(obj, "reply")
        return cls(received=_size(d, "received"), done=f.get(d, "done", bool))
