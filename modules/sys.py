"""Introspection: which functions this minion offers and their documentation."""

from __future__ import annotations

import fnmatch

__all__ = ["list_functions", "list_modules", "doc"]


def list_functions(pattern: str = "*") -> list:
    """Return the callable functions, optionally filtered by a glob or module name.

    CLI example: rx '*' sys.list_functions 'test.*'
    """
    from rx.minion.loader import Loader
    names = Loader().functions()
    if "." not in pattern and "*" not in pattern:
        pattern += ".*"
    return [n for n in names if fnmatch.fnmatchcase(n, pattern)]


def list_modules() -> list:
    """Return the names of the execution modules.

    CLI example: rx '*' sys.list_modules
    """
    from rx.modules import MODULES
    return sorted(MODULES)


def doc(name: str = "") -> dict:
    """Return the docstrings of the functions matching `name` (a function, module or glob).

    CLI example: rx '*' sys.doc test.ping
    """
    from rx.minion.loader import Loader
    loader = Loader()
    names = list_functions(name or "*")
    return {n: loader.doc(n) for n in names}
