"""Run shell commands on the minion."""

from __future__ import annotations

import os
import subprocess
from typing import Any

from rx.modules import CommandError, Result

__all__ = ["run", "run_all", "retcode"]


def _run(cmd: str, cwd: str | None, shell: str, timeout: float | None, env: dict | None,
         stdin: str | None) -> subprocess.CompletedProcess:
    if not isinstance(cmd, str) or not cmd.strip():
        raise CommandError("cmd must be a non-empty command string")
    full_env = {**os.environ, **{str(k): str(v) for k, v in (env or {}).items()}}
    try:
        return subprocess.run([shell, "-c", cmd], cwd=cwd, env=full_env, input=stdin, capture_output=True, text=True,
                              timeout=float(timeout) if timeout else None, errors="replace")
    except FileNotFoundError as exc:
        raise CommandError(f"cannot run {cmd!r}: {exc.strerror}: {exc.filename}") from None
    except NotADirectoryError:
        raise CommandError(f"cwd {cwd!r} is not a directory") from None
    except subprocess.TimeoutExpired:
        raise CommandError(f"{cmd!r} timed out after {timeout}s") from None


def run(cmd: str, cwd: str | None = None, shell: str = "/bin/sh", timeout: float | None = None,
        env: dict | None = None, stdin: str | None = None) -> Any:
    """Run `cmd` in a shell; return stdout and stderr combined, trailing newline trimmed.

    The job's retcode is the command's exit status.
    CLI example: rx '*' cmd.run 'uname -a'
    """
    p = _run(cmd, cwd, shell, timeout, env, stdin)
    out = (p.stdout + p.stderr).rstrip("\n") if p.stderr else p.stdout.rstrip("\n")
    return Result(out, p.returncode)


def run_all(cmd: str, cwd: str | None = None, shell: str = "/bin/sh", timeout: float | None = None,
            env: dict | None = None, stdin: str | None = None) -> Any:
    """Run `cmd` in a shell; return {retcode, stdout, stderr}; the job's retcode is the command's.

    CLI example: rx '*' cmd.run_all 'ls /nonexistent'
    """
    p = _run(cmd, cwd, shell, timeout, env, stdin)
    return Result({"retcode": p.returncode, "stdout": p.stdout.rstrip("\n"), "stderr": p.stderr.rstrip("\n")},
                  p.returncode)


def retcode(cmd: str, cwd: str | None = None, shell: str = "/bin/sh", timeout: float | None = None) -> int:
    """Run `cmd` and return only its exit status (the job itself succeeds).

    CLI example: rx '*' cmd.retcode 'test -d /srv'
    """
    return _run(cmd, cwd, shell, timeout, None, None).returncode
