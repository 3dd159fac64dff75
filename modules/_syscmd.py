"""Running system tools for the pkg, service, user and group modules: argv lists only, a timeout on
every call, and failures turned into `CommandError` messages that say what was run and what it said.
Not a module users can call (not in MODULES)."""

from __future__ import annotations

import os
import re
import subprocess
from typing import Mapping, Sequence

from rx.modules import CommandError

NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+@:~-]{0,254}")
"""what a package, service, user or group name may look like: no leading '-' (it would read as an option),
no '/', no spaces or shell characters"""


def check_name(value: object, what: str) -> str:
    """`value` if it is a plausible name of a `what` (package, service, user, group); CommandError if not."""
    if not isinstance(value, str) or not NAME_RE.fullmatch(value):
        raise CommandError(f"{what} name must be 1-255 characters of letters, digits and _.+@:~- not starting with "
                           f"'-', got {value!r}")
    return value


def names_list(value: object, what: str) -> list[str]:
    """A list of names from a list or a comma-separated string ('' or None: [])."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",") if v.strip()]
    elif isinstance(value, (list, tuple)):
        items = [str(v) if isinstance(v, (int, float)) else v for v in value]
    else:
        raise CommandError(f"{what}s must be a list or a comma-separated string, got {type(value).__name__}")
    return [check_name(v, what) for v in items]


def run(argv: Sequence[str], timeout: float = 60.0, env: Mapping[str, str] | None = None,
        stdin: str | None = None, clean_env: bool = False, spawns: bool = False) -> subprocess.CompletedProcess:
    """Run `argv` (no shell) in a session of its own, so that what it starts outlives the job; return the
    completed process whatever its exit status.  `env` is added to the minion's environment (or, with
    `clean_env`, is all of it).  `spawns`: the program may leave daemons behind that keep its output open
    (init scripts), so its output goes to a file and only its own exit is waited for (stdout then holds
    stdout and stderr).  CommandError if the program is missing or runs past `timeout` seconds."""
    full_env = dict(env or {}) if clean_env else ({**os.environ, **env} if env else None)
    try:
        if not spawns:
            return subprocess.run(list(argv), capture_output=True, text=True, errors="replace", timeout=timeout,
                                  env=full_env, input=stdin, start_new_session=True,
                                  stdin=None if stdin is not None else subprocess.DEVNULL)
        import tempfile
        with tempfile.TemporaryFile() as out:
            p = subprocess.run(list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                               timeout=timeout, env=full_env, start_new_session=True)
            out.seek(0)
            return subprocess.CompletedProcess(p.args, p.returncode, out.read().decode(errors="replace"), "")
    except FileNotFoundError:
        raise CommandError(f"{argv[0]} is not installed on this minion") from None
    except PermissionError:
        raise CommandError(f"{argv[0]} is not executable") from None
    except subprocess.TimeoutExpired:
        raise CommandError(f"{' '.join(argv)} did not finish within {timeout:g} s") from None


def check(argv: Sequence[str], timeout: float = 60.0, env: Mapping[str, str] | None = None) -> str:
    """Run `argv`; return its stdout; CommandError with its own message if it exits non-zero."""
    p = run(argv, timeout, env)
    if p.returncode != 0:
        said = (p.stderr.strip() or p.stdout.strip() or "no output").splitlines()
        raise CommandError(f"{' '.join(argv)} failed (exit {p.returncode}): {' / '.join(said[-6:])}")
    return p.stdout
