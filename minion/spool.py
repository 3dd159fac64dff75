"""The minion's return spool: returns the master could not take yet, kept until it does.

One file per return in `<cachedir>/return_spool`, named by a sequence number (oldest first) and
the jid, written to a temporary name, fsync'd and renamed into place (then the directory is
fsync'd), so a file under its final name is whole: a crash leaves at most a temporary file, which
the next start removes.  A delivered return's file is unlinked without a sync: one that comes back
after a power loss is sent again and the master answers DUPLICATE.  Each file carries a magic and
a CRC; one that does not check (or decode) is logged, removed and skipped, never fatal.

The spool is bounded by a count and a size: past either, the oldest entries are dropped, each with
a warning.  When the directory cannot be written (a full or read-only disk), the return is kept in
memory instead, with a warning.  With no directory at all (the swarm: many minions in one
process) the spool is memory only.
"""

from __future__ import annotations

import collections
import logging
import os
import re
import struct
import zlib
from dataclasses import dataclass

from rx.transport.codec import DecodeError, decode, encode
from rx.transport.errors import ProtocolError
from rx.transport.ids import is_jid
from rx.transport.messages import JobReturn

log = logging.getLogger("rx.minion")

SPOOL_DIR = "return_spool"
"""The spool's directory, under the minion's cachedir."""
MAGIC = b"RXRET01\n"
_HEADER = struct.Struct(">8sI")
_NAME = re.compile(r"^(\d{16})-(\d{20})\.ret\Z")
_TMP_SUFFIX = ".tmp"


@dataclass
class Entry:
    """One spooled return: its place in line, its job and its size in bytes."""

    seq: int
    jid: str
    size: int


class Spool:
    """Returns waiting for the master, oldest first (see the module doc)."""

    def __init__(self, directory: str | None, max_returns: int, max_bytes: int) -> None:
        self.directory = directory
        self.max_returns = max_returns
        self.max_bytes = max_bytes
        self._entries: collections.OrderedDict[int, Entry] = collections.OrderedDict()
        self._memory: dict[int, bytes] = {}
        self._bytes = 0
        self._next = 1
        if directory is not None:
            self._open(directory)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, entry: object) -> bool:
        return isinstance(entry, Entry) and entry.seq in self._entries

    def entries(self) -> list[Entry]:
        """A snapshot of the entries, oldest first."""
        return list(self._entries.values())

    def put(self, ret: dict) -> Entry | None:
        """Keep one return (a `JobReturn` in wire form); the oldest are dropped past the bound.  None if it
        cannot be kept at all (larger than the whole bound)."""
        jid = ret.get("jid")
        jid = jid if is_jid(jid) else "0" * 20  # a name the next start can read back
        body = encode(ret)
        blob = _HEADER.pack(MAGIC, zlib.crc32(body)) + body
        if len(blob) > self.max_bytes:
            log.error("the return of job %s (%d bytes) is larger than the whole return spool (return_spool_max_mb):"
                      " it is dropped", jid, len(blob))
            return None
        while self._entries and (len(self._entries) >= self.max_returns or self._bytes + len(blob) > self.max_bytes):
            oldest = next(iter(self._entries.values()))
            log.warning("return spool full (%d returns, %d bytes; bounds return_spool_max_returns=%d, "
                        "return_spool_max_mb): dropped the oldest spooled return, of job %s",
                        len(self._entries), self._bytes, self.max_returns, oldest.jid)
            self.remove(oldest)
        entry = Entry(self._next, jid, len(blob))
        self._next += 1
        if not self._write(entry, blob):
            self._memory[entry.seq] = blob
        self._entries[entry.seq] = entry
        self._bytes += entry.size
        return entry

    def read(self, entry: Entry) -> dict | None:
        """The return held by `entry`, or None if it is damaged (logged and removed) or gone."""
        blob = self._memory.get(entry.seq)
        if blob is None:
            try:
                with open(self._path(entry), "rb") as f:
                    blob = f.read()
            except OSError as exc:
                log.error("return spool: cannot read %s: %s; skipping it", self._path(entry), exc.strerror)
                self.remove(entry)
                return None
        ret, why = _parse(blob)
        if ret is not None:
            return ret
        log.error("return spool: %s is damaged (%s); skipping it", self._name(entry), why)
        self.remove(entry)
        return None

    def remove(self, entry: Entry) -> None:
        """Forget `entry` (delivered, refused, damaged or dropped)."""
        if self._entries.pop(entry.seq, None) is None:
            return
        self._bytes -= entry.size
        if self._memory.pop(entry.seq, None) is None and self.directory is not None:
            try:
                os.unlink(self._path(entry))
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.error("return spool: cannot remove %s: %s (it may be sent again; the master answers DUPLICATE)",
                          self._path(entry), exc.strerror)

    # ------------------------------------------------------------ files

    def _name(self, entry: Entry) -> str:
        return f"{entry.seq:016d}-{entry.jid}.ret"

    def _path(self, entry: Entry) -> str:
        assert self.directory is not None
        return os.path.join(self.directory, self._name(entry))

    def _open(self, directory: str) -> None:
        """Create the directory (0700) or load what a previous run left, oldest first; a temporary file
        (a write cut short) is removed, a foreign name ignored."""
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            names = os.listdir(directory)
        except OSError as exc:
            log.error("return spool: %s is not usable (%s): returns that wait for the master are kept in memory "
                      "only, and lost if the minion stops", directory, exc.strerror)
            self.directory = None
            return
        found = []
        for name in names:
            match = _NAME.match(name)
            path = os.path.join(directory, name)
            if match is None:
                if name.endswith(_TMP_SUFFIX):
                    _unlink_quietly(path)
                else:
                    log.warning("return spool: ignoring %s (not a spool file)", path)
                continue
            try:
                size = os.stat(path).st_size
            except OSError:
                continue
            found.append(Entry(int(match.group(1)), match.group(2), size))
        for entry in sorted(found, key=lambda e: e.seq):
            self._entries[entry.seq] = entry
            self._bytes += entry.size
        self._next = max(self._entries, default=0) + 1
        while len(self._entries) > self.max_returns or self._bytes > self.max_bytes:
            oldest = next(iter(self._entries.values()))
            log.warning("return spool over its bound at start: dropped the oldest spooled return, of job %s",
                        oldest.jid)
            self.remove(oldest)
        if self._entries:
            log.warning("return spool: %d returns (%d bytes) from before this start wait for the master",
                        len(self._entries), self._bytes)

    def _write(self, entry: Entry, blob: bytes) -> bool:
        """Write `blob` as `entry`'s file, atomically and durably; False (logged) if it cannot be."""
        if self.directory is None:
            return False
        path = self._path(entry)
        tmp = path + _TMP_SUFFIX
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            try:
                view = memoryview(blob)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(tmp, path)
            dfd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
            return True
        except OSError as exc:
            _unlink_quietly(tmp)
            log.warning("return spool: cannot write %s (%s): the return of job %s is kept in memory only",
                        path, exc.strerror, entry.jid)
            return False


def _parse(blob: bytes) -> tuple[dict | None, str]:
    """The return a spool file holds, or None and why its bytes cannot be trusted."""
    if len(blob) < _HEADER.size:
        return None, f"{len(blob)} bytes, shorter than its header"
    magic, crc = _HEADER.unpack_from(blob)
    if magic != MAGIC:
        return None, "bad magic"
    body = blob[_HEADER.size:]
    if zlib.crc32(body) != crc:
        return None, "checksum mismatch"
    try:
        return JobReturn.from_wire(decode(body)).to_wire(), ""
    except DecodeError as exc:
        return None, f"undecodable: {exc}"
    except ProtocolError as exc:
        return None, f"not a return: {exc}"


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
