"""Salt's `autosign_file`: minion ids the operator pre-authorises.  A new key whose id matches
a line is accepted on first contact (a different key for a known id is still denied).

One pattern per line; blank lines and lines starting with `#` are skipped.  An id matches a
line as in Salt: the same string, else the line as a glob, else the line as a regular
expression matching the whole id.  The file is read again when it changes.  It is ignored
(with a warning) unless it is owned by root or the master's user and writable by nobody else:
whoever can write it can enrol any id.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import re
import stat
import time

log = logging.getLogger("rx.master.autosign")

WARN_SECONDS = 60.0
"""At most one warning per this many seconds about an unusable autosign_file."""
MAX_BYTES = 1 << 20


class AutoSign:
    """Matches minion ids against the autosign_file at `path` ("" : nothing matches)."""

    def __init__(self, path: str, warn_seconds: float = WARN_SECONDS) -> None:
        self.path = path
        self.warn_seconds = warn_seconds
        self._stamp: tuple[int, int, int] | None = None
        self._lines: list[tuple[str, re.Pattern | None]] = []
        self._warned_at: float | None = None

    def matches(self, minion_id: str) -> bool:
        """True if `minion_id` is listed (by string, glob or full regular expression)."""
        if not self.path:
            return False
        for line, regex in self._load():
            if minion_id == line or fnmatch.fnmatchcase(minion_id, line) or (
                    regex is not None and regex.fullmatch(minion_id)):
                return True
        return False

    def _load(self) -> list[tuple[str, re.Pattern | None]]:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError as exc:
            self._warn(f"cannot read it ({exc.strerror}); no id is auto-accepted")
            return []
        try:
            st = os.fstat(fd)
            why = unsafe(st)
            if why:
                self._warn(f"{why}; ignoring its content (make it 0644 or stricter, owned by root or the "
                           "master's user)")
                return []
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
            if stamp != self._stamp:
                with os.fdopen(os.dup(fd), "rb") as f:
                    text = f.read(MAX_BYTES).decode("utf-8", errors="replace")
                self._lines = self._parse(text)
                self._stamp = stamp
                self._warned_at = None
        finally:
            os.close(fd)
        return self._lines

    def _parse(self, text: str) -> list[tuple[str, re.Pattern | None]]:
        out = []
        for line in (raw.strip() for raw in text.splitlines()):
            if not line or line.startswith("#"):
                continue
            try:
                regex: re.Pattern | None = re.compile(line)
            except re.error:
                regex = None
            out.append((line, regex))
        return out

    def _warn(self, why: str) -> None:
        now = time.monotonic()
        if self._warned_at is None or now - self._warned_at >= self.warn_seconds:
            self._warned_at = now
            log.warning("autosign_file %s: %s", self.path, why)
        self._stamp, self._lines = None, []


def unsafe(st: os.stat_result) -> str:
    """Why a file with this status must not be trusted to enrol minions ("" if it may be)."""
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if st.st_uid not in (0, os.geteuid()):
        return f"owned by uid {st.st_uid}, neither root nor the master's user"
    writers = [who for who, bit in (("group", stat.S_IWGRP), ("others", stat.S_IWOTH)) if st.st_mode & bit]
    if writers:
        return f"writable by {' and '.join(writers)} (mode {stat.S_IMODE(st.st_mode):04o})"
    return ""
