"""Whether the master on this host is still there, seen through its pidfile and /proc.

A client that waits for a busy master's answer (a burst of clients, a saturated host) keeps waiting
while the processes that may hold its request are the ones that ran when it asked, and stops at once
when the master stopped or one of its processes was replaced (a request it held is then lost).
Where the processes cannot be seen (no pidfile, no /proc), `visible` is False and the client waits
the master's `timeout`, as before.
"""

from __future__ import annotations

import os

Processes = tuple[int, frozenset[int]]


class MasterWatch:
    """The master's supervisor and children when the watch starts, compared with what runs later."""

    def __init__(self, pidfile: str) -> None:
        self.pidfile = pidfile
        self.start = processes(pidfile)

    @property
    def visible(self) -> bool:
        return self.start is not None

    def gone(self) -> str:
        """Why the master is not there any more ('' while it runs, or if it could not be seen at the start)."""
        return self._why(children=False)

    def lost(self) -> str:
        """Why a request the master held when the watch started may never be answered ('' if none)."""
        return self._why(children=True)

    def _why(self, children: bool) -> str:
        if self.start is None:
            return ""
        now = processes(self.pidfile)
        if now is None:
            return "the master stopped"
        if now[0] != self.start[0]:
            return "the master was restarted"
        if children and self.start[1] - now[1]:
            return "one of its processes died meanwhile (the supervisor restarts it)"
        return ""


def processes(pidfile: str) -> Processes | None:
    """(supervisor pid, its children's pids) of the master whose pidfile this is, or None if it does not
    run or cannot be seen."""
    try:
        with open(pidfile) as f:
            pid = int(f.read().split()[0])
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                return None
        children: set[int] = set()
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                children.update(int(p) for p in f.read().split())
    except (OSError, ValueError, IndexError):
        return None
    return pid, frozenset(children)
