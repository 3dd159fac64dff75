"""Calling one function with a job's arguments, and turning whatever happens into a return that can
travel: a value and a retcode, never an exception out of here.

- unknown or unavailable function: Salt's "'x.y' is not available." (plus close matches, or why the
  module is unavailable), retcode 1 as Salt's;
- arguments that do not bind to the signature: "Passed invalid arguments to x.y: <why>" with the
  signature and the CLI example, retcode 1 (checked before the call, so a TypeError raised inside a
  function is a bug shown with its traceback, not a usage error);
- `CommandError`: its message; any other exception: its traceback; `Result`: its value and retcode.

The per-call `timeout=` keyword: for a function that declares a `timeout` parameter (cmd.run) it is
passed to the function, and the job's limit becomes that plus TIMEOUT_GRACE (the function's own
timeout answers first); for any other function it is taken out of the arguments and is the job's limit,
in place of the minion's `job_timeout`.  The executor enforces the limit announced to it.
"""

from __future__ import annotations

import functools
import inspect
import math
import traceback
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Callable

from rx.minion.registry import Registry, UnknownFunction
from rx.modules import CONTEXT_PARAM, CommandError, ExecContext, Result, signature_text, takes_context
from rx.transport.codec import MAX_DEPTH, MAX_OBJECTS, check_structure, decode, encode
from rx.transport.messages import Job

EX_GENERIC = 1
"""Salt's retcode for a failed call, an unknown function included."""
TIMEOUT_GRACE = 5.0
"""Seconds the job outlives a `timeout=` passed to a function that enforces it itself."""
TIMEOUT_ARG = "timeout"
BY_CONFIG, BY_CALL = 0, 1
"""Where a job's time limit came from: the minion's `job_timeout`, or the call's `timeout=`."""

MAX_RETURN_BYTES = 12 * 1024 * 1024
"""Largest encoded return sent to the master (the frame limit is 16 MB, with room for the envelope)."""
RETURN_WRAPPER_OBJECTS = 256
"""Objects a sealed `_return` adds around a job's result besides the job's arguments (command, jid,
function names, ...); the result itself sits one level deeper there."""

Announce = Callable[[float, int], None]


def job_timeout(ctx: ExecContext) -> float:
    """The minion's `job_timeout` (0: no limit)."""
    return float(getattr(ctx.config, "job_timeout", 0) or 0)


def call_one(registry: Registry, fun: str, args: list, kwargs: dict, ctx: ExecContext,
             announce: Announce | None = None) -> tuple[Any, int]:
    """Call one function; any failure becomes (message or traceback, non-zero retcode).  `announce(limit,
    source)` is told the job's time limit just before the function runs."""
    try:
        func = registry.resolve(fun)
    except UnknownFunction as exc:
        return str(exc), EX_GENERIC
    try:
        kwargs, limit, source = _time_limit(func, kwargs, job_timeout(ctx))
    except CommandError as exc:
        return f"ERROR: {exc}", EX_GENERIC
    call_args = [replace(ctx, fun=fun), *args] if takes_context(func) else list(args)
    wrong = wrong_arguments(fun, func, call_args, kwargs)
    if wrong:
        return wrong, EX_GENERIC
    if announce is not None:
        announce(limit, source)
    try:
        value = func(*call_args, **kwargs)
    except Exception as exc:
        return failure(exc)
    return (value.value, value.retcode) if isinstance(value, Result) else (value, 0)


async def call_builtin(handler: Callable, fun: str, args: list, kwargs: dict) -> dict:
    """Run a built-in of the minion process (`handler`, its minion bound) as a job: its return dict."""
    wrong = wrong_arguments(fun, handler, list(args), kwargs)
    if wrong:
        value, rc = wrong, EX_GENERIC
    else:
        try:
            value, rc = await handler(*args, **kwargs), 0
            if isinstance(value, Result):
                value, rc = value.value, value.retcode
        except Exception as exc:
            value, rc = failure(exc)
    return decode(wire_safe({"return": plain(value), "retcode": rc, "success": rc == 0}))


def failure(exc: Exception) -> tuple[str, int]:
    """What a function that raised returns: a CommandError's message, else the traceback (as Salt's)."""
    if isinstance(exc, CommandError):
        return f"ERROR: {exc}", EX_GENERIC
    return "The minion function caused an exception: " + traceback.format_exc(), EX_GENERIC


def wrong_arguments(fun: str, func: Callable, call_args: list, kwargs: dict) -> str:
    """"" if the arguments bind to `func`'s signature; else a message built from the signature."""
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return ""
    try:
        sig.bind(*call_args, **kwargs)
        return ""
    except TypeError as exc:
        why = str(exc)
    if CONTEXT_PARAM in kwargs and takes_context(func):
        why = f"'{CONTEXT_PARAM}' is given by the minion, not by the caller"
    lines = [f"Passed invalid arguments to {fun}: {why}", f"Usage: {fun}{signature_text(func)}"]
    doc = (func.func if isinstance(func, functools.partial) else func).__doc__ or ""
    lines += [line.strip() for line in doc.splitlines() if line.strip().startswith("CLI example")]
    return "\n".join(lines)


def _time_limit(func: Callable, kwargs: dict, default: float) -> tuple[dict, float, int]:
    """(the function's kwargs, the job's time limit in seconds or 0, where that came from)."""
    if TIMEOUT_ARG not in kwargs:
        return kwargs, default, BY_CONFIG
    given = kwargs[TIMEOUT_ARG]
    seconds = _seconds(given)
    try:
        own = TIMEOUT_ARG in inspect.signature(func).parameters
    except (TypeError, ValueError):
        own = False
    if own:  # the function enforces it; the job's limit only backs it up
        return kwargs, (seconds + TIMEOUT_GRACE if seconds else default), BY_CALL if seconds else BY_CONFIG
    if not seconds:
        raise CommandError(f"timeout={given!r}: the job's time limit must be a number of seconds > 0")
    return {k: v for k, v in kwargs.items() if k != TIMEOUT_ARG}, seconds, BY_CALL


def _seconds(value: Any) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return 0.0
    return seconds if math.isfinite(seconds) and seconds > 0 else 0.0


def execute(registry: Registry, job: Job, ctx: ExecContext, announce: Announce | None = None) -> dict:
    """The return of a job as {return, retcode, success}.  A multi-function job returns
    `{fun: value}`, or, when a function is named more than once, a list of the values in call
    order (so no result is lost)."""
    ctx = replace(ctx, jid=job.jid)
    if isinstance(job.fun, list):
        if announce is not None:
            announce(job_timeout(ctx), BY_CONFIG)
        values, worst = [], 0
        for fun, args in zip(job.fun, job.arg):
            value, rc = call_one(registry, fun, args, {}, ctx)
            values.append(value)
            worst = worst or rc
        repeated = len(set(job.fun)) < len(job.fun)
        out: Any = values if repeated else dict(zip(job.fun, values))
        return _result(out, worst)
    value, rc = call_one(registry, job.fun, job.arg, job.kwarg, ctx, announce)
    return _result(value, rc)


def _result(value: Any, rc: int) -> dict:
    try:
        return {"return": plain(value), "retcode": rc, "success": rc == 0}
    except RecursionError:
        return {"return": "ERROR: the return value cannot be sent: it nests too deep (or contains itself)",
                "retcode": EX_GENERIC, "success": False}


_MSGPACK_INTS = (-(2 ** 63), 2 ** 64 - 1)


def plain(value: Any) -> Any:
    """Make a return value msgpack-safe: map keys become strings, sets and tuples lists, integers
    msgpack cannot carry their decimal string, any other type its repr."""
    if value is None or isinstance(value, (bool, float, str, bytes)):
        return value
    if isinstance(value, int):
        return value if _MSGPACK_INTS[0] <= value <= _MSGPACK_INTS[1] else str(value)
    if isinstance(value, dict):
        return {k if isinstance(k, (str, bytes)) else _repr(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    if isinstance(value, Mapping):  # not a dict: rx-call's lazy grains, returned as they are
        return plain(dict(value))
    return _repr(value)


def _repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception as exc:
        return f"<{type(value).__name__} object: repr failed: {type(exc).__name__}>"


def objects_of(job: Job) -> int:
    """Objects the job's arguments add to its `_return` (they travel back as `fun_args`)."""
    return check_structure(encode([job.arg, job.kwarg]), MAX_OBJECTS, MAX_DEPTH + 1)


def wire_safe(result: dict, reserve: int = 0) -> bytes:
    """The encoded result, or an error return saying why it cannot travel (never a silent loss): the
    master decodes the `_return` it goes into with the same limits (size, objects, depth), so the
    result leaves room for the wrapper and `reserve` more objects."""
    try:
        payload = encode(result)
        if len(payload) > MAX_RETURN_BYTES:
            raise ValueError(f"{len(payload)} bytes encoded, over the {MAX_RETURN_BYTES}-byte limit")
        check_structure(payload, MAX_OBJECTS - RETURN_WRAPPER_OBJECTS - reserve, MAX_DEPTH - 1)
        decode(payload)
        return payload
    except (TypeError, ValueError, OverflowError) as exc:
        return encode({"return": f"ERROR: the return value cannot be sent: {exc}", "retcode": EX_GENERIC,
                       "success": False})
