"""The audit log (`audit_log_file`): one JSON line per request a user or root makes of the master.

Fields: `time` (UTC, ISO 8601), `user`, `eauth` (`""` for the root key, `publisher_acl` for a local
user, `-` for an rx-api request without a valid token, else the back end), `action` (publish, preview,
lookup, login, logout, runner, wheel; `api`: one rx-api request, with `method`, `path`, `status`), `target`,
`tgt_type`, `fun`, `outcome` (`allowed`, `refused`, `failed`, `locked`), `reason`, and where known
`jid`, `minions` (how many were expected), `source`.  Every master process that decides a request
(the workers, the user-socket relay, rx-api) appends to the same file: each line is one write(2)
to a descriptor opened with O_APPEND, so lines never interleave.  A line is cut at MAX_LINE bytes.
When the file cannot be written the line goes to the master's log (logger `rx.audit`) instead.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
from typing import Any

log = logging.getLogger("rx.audit")

MAX_LINE = 4000
MAX_FIELD = 1000


def _field(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        value = ",".join(map(str, value))
    if isinstance(value, str) and len(value) > MAX_FIELD:
        return value[:MAX_FIELD] + "..."
    return value


class AuditLog:
    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None

    def write(self, *, user: str, eauth: str, action: str, outcome: str, **fields: Any) -> None:
        entry = {"time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds"),
                 "user": user, "eauth": eauth, "action": action, "outcome": outcome,
                 **{k: _field(v) for k, v in fields.items() if v not in (None, "")}}
        line = json.dumps(entry, ensure_ascii=True, default=str)
        if len(line) >= MAX_LINE:
            line = json.dumps({**{k: entry[k] for k in ("time", "user", "eauth", "action", "outcome")},
                               "truncated": line[:MAX_LINE // 2]}, ensure_ascii=True)
        try:
            if self._fd is not None and _moved(self.path, self._fd):  # rotated away: follow the name
                self.close()
            if self._fd is None:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
            os.write(self._fd, (line + "\n").encode())
        except OSError as exc:
            self.close()
            log.warning("%s (audit_log_file %s not writable: %s)", line, self.path, exc.strerror)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _moved(path: str, fd: int) -> bool:
    try:
        return os.stat(path).st_ino != os.fstat(fd).st_ino
    except FileNotFoundError:
        return True
