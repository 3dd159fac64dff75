"""Introspection: which modules and functions this minion offers, their documentation and signatures.

`sys.reload_modules` runs in the minion process (a built-in, see rx.minion.builtins)."""

from __future__ import annotations

import fnmatch
import inspect

from rx.modules import CommandError, ExecContext, FunctionIndex, user_signature

__all__ = ["list_functions", "list_modules", "list_unavailable", "doc", "argspec"]


def _index(ctx: ExecContext) -> FunctionIndex:
    if ctx.registry is None:
        raise CommandError("no function registry in this context")
    return ctx.registry


def _select(names: list[str], patterns: tuple[str, ...]) -> list[str]:
    """`names` matching any pattern: a glob, a `module.function`, or a module name (`sys` is `sys.*`,
    not `sysctl.*`); no pattern: all."""
    if not patterns:
        return names
    out = set()
    for pattern in map(str, patterns):
        if "*" in pattern or "?" in pattern or "[" in pattern or "." in pattern.rstrip("."):
            out.update(fnmatch.filter(names, pattern))
        else:
            out.update(n for n in names if n.startswith(pattern.rstrip(".") + "."))
    return sorted(out)


def list_functions(ctx: ExecContext, *names: str) -> list:
    """Return the callable functions, all of them or those of the modules, functions or globs named.

    CLI example: rx '*' sys.list_functions sys 'test.p*'
    """
    return _select(_index(ctx).functions(), names)


def list_modules(ctx: ExecContext, *names: str) -> list:
    """Return the names of the modules available here (all, or those matching the globs given).

    Modules that are not available here are in sys.list_unavailable.
    CLI example: rx '*' sys.list_modules 's*'
    """
    mods = _index(ctx).modules()
    return sorted({m for m in mods if not names or any(fnmatch.fnmatchcase(m, str(n)) for n in names)})


def list_unavailable(ctx: ExecContext) -> dict:
    """Return the modules rx knows that cannot serve here, each with why (its `__virtual__` said no,
    or its file cannot be imported).

    Differs from Salt: Salt has no such function (it keeps the reasons in its log).
    CLI example: rx '*' sys.list_unavailable
    """
    return _index(ctx).unavailable()


def doc(ctx: ExecContext, *names: str) -> dict:
    """Return the docstrings of the functions named: modules, functions or globs (all when none).

    Differs from Salt: a module that is unavailable here is answered with why, under its name.
    CLI example: rx '*' sys.doc test.ping
    """
    index = _index(ctx)
    docs = {n: index.doc(n) for n in _select(index.functions(), names)}
    wanted = {str(n).split(".")[0] for n in names}
    if wanted:
        for name, why in index.unavailable().items():
            if name in wanted:
                docs[name] = f"Module {name!r} is unavailable here: {why}"
    return docs


def argspec(ctx: ExecContext, module: str = "") -> dict:
    """Return the argument specification of the functions of a module, a function, or a glob (all when
    none): {fun: {args, defaults, varargs, kwargs}}, as Salt's (the minion's `ctx` is not shown).

    CLI example: rx '*' sys.argspec cmd.run
    """
    index = _index(ctx)
    out = {}
    for fun in _select(index.functions(), (module,) if module else ()):
        try:
            params = list(user_signature(index.function(fun)).parameters.values())
        except (TypeError, ValueError):
            continue
        named = [p for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        defaults = [p.default for p in named if p.default is not inspect.Parameter.empty]
        out[fun] = {"args": [p.name for p in named] or None, "defaults": defaults or None,
                    "varargs": True if any(p.kind == p.VAR_POSITIONAL for p in params) else None,
                    "kwargs": True if any(p.kind == p.VAR_KEYWORD for p in params) else None}
    return out
