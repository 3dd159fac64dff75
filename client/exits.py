"""The `rx` CLI's exit codes and the client errors that carry them, apart from the result types so that
`rx --version`, `--help` and a usage error load neither dataclasses nor the clients."""

from __future__ import annotations

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
