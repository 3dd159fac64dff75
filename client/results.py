"""What the clients return and raise: typed results and errors with their CLI exit codes."""

from __future__ import annotations

from dataclasses import dataclass, field

NOT_STARTED = "not started: --failhard stopped the batch"
STILL_RUNNING = "still running"
"""The reason given for a minion that still said it ran the job when the client's max_wait was reached."""
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_MISSING, EXIT_NO_MATCH, EXIT_MASTER, EXIT_MASTER_ERROR, EXIT_INTERRUPTED = \
    0, 1, 2, 3, 4, 5, 6, 130
EXIT_CODES = {
    EXIT_OK: "every targeted minion returned and every function succeeded",
    EXIT_FAILED: "a function failed on at least one minion",
    EXIT_USAGE: "usage error or bad target expression (nothing is published)",
    EXIT_MISSING: "at least one minion did not return, or still ran after --max-wait (3 wins over 1)",
    EXIT_NO_MATCH: "the target matched no minion",
    EXIT_MASTER: "master unreachable, authentication or permission error",
    EXIT_MASTER_ERROR: "the master failed (internal error, job store unavailable: full disk?); see its log",
    EXIT_INTERRUPTED: "interrupted (the jid is printed to look the job up later)",
}
"""The `rx` CLI's exit codes (DESIGN §6): `rx --help` lists them from here."""


class ClientError(Exception):
    """Base of client errors; `exit_code` is what the CLI exits with (DESIGN §6)."""

    exit_code = 1


class MasterUnreachable(ClientError):
    exit_code = EXIT_MASTER


class PermissionDenied(ClientError):
    exit_code = EXIT_MASTER


class BadRequest(ClientError):
    exit_code = EXIT_USAGE


class MasterError(ClientError):
    """The master answered that it failed (ErrorKind.INTERNAL) or that a store it needs is unavailable
    (ErrorKind.UNAVAILABLE): not the caller's fault, and not fixed by calling again at once."""

    exit_code = EXIT_MASTER_ERROR


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
