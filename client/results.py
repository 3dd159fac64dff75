"""What the clients return and raise: typed results and errors with their CLI exit codes."""

from __future__ import annotations

from dataclasses import dataclass, field

from rx.client.exits import (EXIT_CODES, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_MASTER,  # noqa: F401 (re-exported)
                              EXIT_MASTER_ERROR, EXIT_MISSING, EXIT_NO_MATCH, EXIT_OK, EXIT_USAGE, BadRequest,
                              ClientError, MasterError, MasterUnreachable, PermissionDenied)

NOT_STARTED = "not started: --failhard stopped the batch"
STILL_RUNNING = "still running"
"""The reason given for a minion that still said it ran the job when the client's max_wait was reached."""


@dataclass(frozen=True)
class Published:
    jid: str
    minions: list[str]
    no_grains: list[str] = field(default_factory=list)
    warning: str = ""
    """The master's word when the job went out but its record could not be stored (a full disk)."""


@dataclass
class Missing:
    """A minion that was expected but did not return, and why."""

    id: str
    reason: str

    def as_return(self, jid: str = "") -> dict:
        return {"ret": f"Minion did not return. [{self.reason}]", "retcode": None, "failed": True,
                "reason": self.reason, "jid": jid}


def as_return(jid: str, data: dict) -> dict:
    """A stored or streamed return as the client yields it."""
    return {"ret": data.get("return"), "retcode": data.get("retcode"), "success": data.get("success"), "jid": jid}
