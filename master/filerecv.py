"""Files minions push to the master (`cp.push`), off unless `file_recv` is set.

A pushed file is stored as `<cachedir>/minions/<id>/files/<path>`, where `<id>` is the id the
request's key proved and `<path>` a clean relative path (no `..`, no NUL: `filemsgs.clean_path`); no
part of the way there may be a symlink.  It arrives in chunks, each at the offset where the previous one
ended, into `<cachedir>/minions/<id>/.push/<hash of path>.part`, and is moved into place when the last
byte arrives; a file larger than `file_recv_max_size` is refused at its first chunk.  A chunk sent again
(the reply was lost) is acknowledged without being written twice.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass

from rx.transport.filemsgs import PushReply, PushRequest


class PushRefused(Exception):
    """A push the master does not take: the message says why."""


@dataclass(frozen=True)
class RecvSettings:
    enabled: bool
    max_bytes: int
    minions_dir: str
    """`<cachedir>/minions`"""


class FileRecv:
    def __init__(self, settings: RecvSettings) -> None:
        self.settings = settings

    def receive(self, minion_id: str, req: PushRequest) -> PushReply:
        s = self.settings
        if not s.enabled:
            raise PushRefused("the master does not accept pushed files (file_recv is off)")
        if req.total > s.max_bytes:
            raise PushRefused(f"{req.path}: {req.total} bytes is over the master's file_recv_max_size "
                              f"({s.max_bytes} bytes)")
        base = os.path.join(s.minions_dir, minion_id)
        dest = os.path.join(base, "files", req.path)
        part = os.path.join(base, ".push", hashlib.sha256(req.path.encode()).hexdigest() + ".part")
        for d in (os.path.dirname(dest), os.path.dirname(part)):
            _make_dirs(s.minions_dir, d)
        flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | (os.O_TRUNC if req.offset == 0 else 0)
        fd = os.open(part, flags, 0o600)
        try:
            have = os.fstat(fd).st_size
            end = req.offset + len(req.data)
            if req.offset != have:
                if end == have and req.offset:  # this chunk again: its reply was lost
                    return PushReply(received=have, done=False)
                raise PushRefused(f"{req.path}: chunk at offset {req.offset}, but the master holds {have} bytes; "
                                  f"push the file again")
            os.pwrite(fd, req.data, req.offset)
        finally:
            os.close(fd)
        if end < req.total:
            return PushReply(received=end)
        if os.path.isdir(dest) and not os.path.islink(dest):
            os.unlink(part)
            raise PushRefused(f"{req.path}: a directory of that name was pushed before")
        os.replace(part, dest)
        return PushReply(received=end, done=True)


def _make_dirs(top: str, path: str) -> None:
    """Create `path` (under `top`, which is created too) refusing any part that exists as a symlink or as
    something else than a directory."""
    os.makedirs(top, mode=0o700, exist_ok=True)
    rel = os.path.relpath(path, top)
    if rel.startswith(".."):
        raise PushRefused("the destination is outside the master's minions directory")
    current = top
    for part in rel.split(os.sep) if rel != "." else []:
        current = os.path.join(current, part)
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            os.mkdir(current, 0o700)
            continue
        if not stat.S_ISDIR(st.st_mode):
            raise PushRefused(f"{os.path.relpath(current, top)} exists on the master and is not a directory")
