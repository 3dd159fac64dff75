"""Introspection: which functions this minion offers and their documentation."""

from __future__ import annotations

import fnmatch

from rx.modules import CommandError, ExecContext, FunctionIndex

__all__ = ["list_functions", "list_modules", "doc"]


def _index(ctx: ExecContext) -> FunctionIndex:
    if ctx.registry is None:
        raise CommandError("no function registry in this context")
    return ctx.registry


def list_functions(ctx: ExecContext, pattern: str = "*") -> list:
    """Return the callable functions, optionally filtered by a glob or module name.

    CLI example: rx '*' sys.list_functions 'test.*'
    """
    if "." not in pattern and "*" not in pattern:
        pattern += ".*"
    return [n for n in _index(ctx).functions() if fnmatch.fnmatchcase(n, pattern)]


def list_modules(ctx: ExecContext) -> list:
    """Return the names of the execution modules.

    CLI example: rx '*' sys.list_modules
    """
    return _index(ctx).modules()


def doc(ctx: ExecContext, name: str = "") -> dict:
    """Return the docstrings of the functions matching `name` (a function, module or glob).

    CLI example: rx '*' sys.doc test.ping
    """
    index = _index(ctx)
    return {n: index.doc(n) for n in list_functions(ctx, name or "*")}
