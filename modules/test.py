"""Functions for checking that minions answer and that arguments arrive intact."""

from __future__ import annotations

import time
from typing import Any

import rx
from rx.modules import CommandError, ExecContext, Result

__all__ = ["ping", "echo", "sleep", "version", "arg", "retcode", "exception"]


def ping() -> bool:
    """Return True: the minion is up and can run jobs.

    CLI example: rx '*' test.ping
    """
    return True


def echo(text: str) -> str:
    """Return `text` unchanged.

    CLI example: rx '*' test.echo 'hello world'
    """
    return text


def sleep(length: float) -> bool:
    """Sleep `length` seconds, then return True (for testing timeouts).

    CLI example: rx '*' test.sleep 20
    """
    try:
        seconds = float(length)
    except (TypeError, ValueError):
        raise CommandError(f"length must be a number of seconds, got {length!r}") from None
    if seconds < 0:
        raise CommandError("length must not be negative")
    time.sleep(seconds)
    return True


def version() -> str:
    """Return the rx version the minion runs.

    CLI example: rx '*' test.version
    """
    return rx.__version__


def arg(ctx: ExecContext, *args: Any, **kwargs: Any) -> dict:
    """Return the positional and keyword arguments as received, with their types.

    CLI example: rx '*' test.arg 1 two key=value
    """
    return {"args": list(args), "kwargs": kwargs, "types": [type(a).__name__ for a in args],
            "minion": ctx.minion_id}


def retcode(code: int = 0) -> Any:
    """Return `code` as the job's retcode (for testing exit codes).

    CLI example: rx '*' test.retcode 3
    """
    return Result(value=int(code), retcode=int(code))


def exception(message: str = "test.exception raised") -> None:
    """Raise an exception (for testing how failures are reported).

    CLI example: rx '*' test.exception
    """
    raise RuntimeError(message)
