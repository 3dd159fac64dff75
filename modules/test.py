"""Functions for checking that minions answer, that arguments and returns arrive intact, and how
failures, retcodes and slow jobs are reported.  Names, arguments and returns are Salt's."""

from __future__ import annotations

import hashlib
import random
import time
from typing import Any

import rx
from rx.modules import CommandError, ExecContext, Result

__all__ = ["ping", "echo", "sleep", "rand_sleep", "version", "versions_report", "arg", "arg_type", "kwarg",
           "outputter", "exception", "retcode", "fib", "true", "false", "random_hash", "provider", "providers"]


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


def _seconds(value: Any, name: str) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise CommandError(f"{name} must be a number of seconds, got {value!r}") from None
    if not seconds >= 0 or seconds == float("inf"):
        raise CommandError(f"{name} must be a finite number of seconds >= 0, got {value!r}")
    return seconds


def sleep(length: float) -> bool:
    """Sleep `length` seconds, then return True (for testing timeouts).

    CLI example: rx '*' test.sleep 20
    """
    time.sleep(_seconds(length, "length"))
    return True


def rand_sleep(max: float = 60) -> bool:  # Salt's argument name, shadowing the builtin here only
    """Sleep a random whole number of seconds from 0 to `max`, then return True (minions returning at
    different times).

    CLI example: rx '*' test.rand_sleep 60
    """
    time.sleep(random.randint(0, int(_seconds(max, "max"))))
    return True


def version() -> str:
    """Return the rx version the minion runs.

    CLI example: rx '*' test.version
    """
    return rx.__version__


def versions_report() -> str:
    """Return the versions of rx, Python, its libraries and the system, one `name: version` a line.

    Differs from Salt: one flat list (Salt groups its report in sections); `rx --versions-report` prints it.
    CLI example: rx '*' test.versions_report
    """
    import platform
    from importlib import metadata

    from rx.transport.roles import library_versions
    lines = [f"rx: {rx.__version__}", f"Python: {platform.python_version()}"]
    for dist in ("pyzmq", "msgpack", "cryptography", "PyNaCl", "PyYAML"):
        try:
            lines.append(f"{dist}: {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            lines.append(f"{dist}: not installed")
    lines.extend(f"{name}: {ver}" for name, ver in library_versions().items())
    lines.append(f"System: {platform.system()} {platform.release()} {platform.machine()}")
    return "\n".join(lines)


def arg(*args: Any, **kwargs: Any) -> dict:
    """Return the positional and keyword arguments as received: {args, kwargs}.

    CLI example: rx '*' test.arg 1 two key=value
    """
    return {"args": list(args), "kwargs": kwargs}


def arg_type(*args: Any, **kwargs: Any) -> dict:
    """Return the types of the arguments as received: {args: [type, ...], kwargs: {name: type}}.

    CLI example: rx '*' test.arg_type 1 two 3.5 key=yes
    """
    return {"args": [str(type(a)) for a in args], "kwargs": {k: str(type(v)) for k, v in kwargs.items()}}


def kwarg(**kwargs: Any) -> dict:
    """Return the keyword arguments as received.

    CLI example: rx '*' test.kwarg a=1 b=two
    """
    return kwargs


def outputter(data: Any) -> Any:
    """Return `data` unchanged (for trying an outputter: `--out`).

    CLI example: rx '*' test.outputter '{a: [1, 2]}' --out yaml
    """
    return data


def exception(message: str = "Test Exception") -> None:
    """Raise an exception with `message` (for testing how failures are reported: the return is the traceback).

    CLI example: rx '*' test.exception 'Oh noes!'
    """
    raise RuntimeError(message)


def retcode(code: int = 42) -> Any:
    """Return True with `code` as the job's retcode (for testing exit codes).

    CLI example: rx '*' test.retcode 3
    """
    try:
        code = int(code)
    except (TypeError, ValueError):
        raise CommandError(f"code must be a whole number, got {code!r}") from None
    return Result(value=True, retcode=code)


def fib(num: int) -> list:
    """Return [the `num`-th Fibonacci number, the seconds it took to compute] (a CPU-bound test job).

    A number too large for the wire (past 2**64) comes back as its decimal string.
    CLI example: rx '*' test.fib 40
    """
    try:
        n = int(num)
    except (TypeError, ValueError):
        raise CommandError(f"num must be a whole number, got {num!r}") from None
    if n < 0:
        raise CommandError("num must not be negative")
    start = time.time()
    prev, curr = 0, 1
    for _ in range(n):
        prev, curr = curr, prev + curr
    return [prev, time.time() - start]


def true() -> bool:
    """Return True (Salt's `test.true`).

    CLI example: rx '*' test.true
    """
    return True


def false() -> bool:
    """Return False (Salt's `test.false`; the job itself succeeds).

    CLI example: rx '*' test.false
    """
    return False


def random_hash(size: int = 9999999999, hash_type: str = "sha256") -> str:
    """Return the hex digest of a random number from 0 to `size`, hashed with `hash_type`.

    Differs from Salt: the default hash is sha256 (Salt: md5, refused on FIPS hosts).
    CLI example: rx '*' test.random_hash hash_type=sha512
    """
    if hash_type not in hashlib.algorithms_available:
        raise CommandError(f"hash_type {hash_type!r} is not one of {', '.join(sorted(hashlib.algorithms_guaranteed))}")
    try:
        top = int(size)
    except (TypeError, ValueError):
        raise CommandError(f"size must be a whole number, got {size!r}") from None
    digest = hashlib.new(hash_type, str(random.SystemRandom().randint(0, max(top, 0))).encode())
    return digest.hexdigest(32) if digest.name.startswith("shake") else digest.hexdigest()


def provider(ctx: ExecContext, module: str) -> str:
    """Return the file (base name, no extension) that serves module `module` here: `aptpkg` for `pkg`,
    a custom module's own file name; "" when none does.

    CLI example: rx '*' test.provider pkg
    """
    if ctx.registry is None:
        raise CommandError("no function registry in this context")
    return ctx.registry.provider(str(module))


def providers(ctx: ExecContext) -> dict:
    """Return {file: module name} for every module available here (Salt's shape: keyed by file).

    CLI example: rx '*' test.providers
    """
    if ctx.registry is None:
        raise CommandError("no function registry in this context")
    index = ctx.registry
    return {index.provider(m): m for m in index.modules()}
