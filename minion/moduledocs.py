"""docs/modules.md: every built-in execution module function and minion built-in, from their
docstrings and signatures (`python -m rx.minion.moduledocs > docs/modules.md`, or `make docs`).

Every file of `rx.modules.MODULES` is documented, available on this host or not (`__virtual__` is
not asked), so the page is the same wherever it is generated."""

from __future__ import annotations

import functools
import importlib
import inspect
import sys
from typing import Callable

from rx.minion.builtins import BUILTIN_MODULES, BUILTINS
from rx.modules import ALIASES, INLINE, MODULES, signature_text

INTRO = """\
# rx execution modules

<!-- Generated from the docstrings by `make docs` (python -m rx.minion.moduledocs > docs/modules.md);
     edit the modules, not this file. tests/unit/test_moduledocs.py fails when this file is out of date. -->

What a minion can run: `rx '<target>' <module>.<function> [args] [name=value ...]`. The same text is
what `rx -d <function>` prints and `rx '*' sys.doc <function>` answers (a minion documents the
modules available on it; `rx '*' sys.list_unavailable` says why the others are not).
Functions marked *(minion process)* run inside the minion daemon itself: the `rxutil` ones act on its
own state; the others only read the job's arguments, the grains or the pillar and return at once, so the
minion does not fork for them (a job of several functions, or one served by a custom module of the same
name, forks as any other).  Every other function runs in a process of its own per job, as Salt's do. A line "Differs from Salt:" says where rx deliberately
does not do what Salt's function of the same name does. Writing, packaging and shipping your own
modules: README, "Custom execution modules".
"""


def _doc(func: Callable) -> str:
    return inspect.cleandoc(func.__doc__ or "(undocumented)")


def _function(name: str, func: Callable, where: str = "") -> list[str]:
    plain = func.func if isinstance(func, functools.partial) else func
    return [f"### `{name}{signature_text(func)}`{where}\n", _doc(plain), ""]


def _summary(text: str | None) -> str:
    return inspect.cleandoc(text or "").split("\n\n")[0].replace("\n", " ")


def _builtins_of(name: str) -> list[tuple[str, Callable]]:
    return [(fun, func) for fun, func in BUILTINS.items() if fun.split(".")[0] == name]


def _sections() -> tuple[list[str], list[str]]:
    """(table of contents rows, body lines)."""
    names = sorted(set(MODULES.values()) | {fun.split(".")[0] for fun in BUILTINS})
    toc, body = [], []
    for name in names:
        files = [f for f, served in MODULES.items() if served == name]
        aliases = sorted(a for a, real in ALIASES.items() if real == name)
        also = f" (also callable as {', '.join(f'`{a}`' for a in aliases)})" if aliases else ""
        body.append(f"## `{name}`{also}\n")
        summary = ""
        for file in files:
            try:
                mod = importlib.import_module(f"rx.modules.{file}")
            except Exception as exc:
                body += [f"`{file}.py` cannot be imported here: {type(exc).__name__}: {exc}", ""]
                continue
            summary = summary or _summary(mod.__doc__)
            if len(files) > 1:
                body += [f"Served by `{file}.py` where its `__virtual__` says yes: {_summary(mod.__doc__)}", ""]
            else:
                body += [inspect.cleandoc(mod.__doc__ or ""), ""]
            for fun in getattr(mod, "__all__", ()):
                where = f" ({file}.py)" if len(files) > 1 else ""
                where += " *(minion process)*" if f"{name}.{fun}" in INLINE else ""
                body += _function(f"{name}.{fun}", getattr(mod, fun), where)
        if not files:
            summary = BUILTIN_MODULES.get(name, "")
            body += [summary, ""]
        for fun, func in _builtins_of(name):
            body += _function(fun, functools.partial(func, None), " *(minion process)*")
        toc.append(f"| [`{name}`](#{name}{'-also-callable-as-' + '-'.join(aliases) if aliases else ''}) | "
                   f"{summary} |")
    return toc, body


def markdown() -> str:
    toc, body = _sections()
    return "\n".join([INTRO, "| module | what |", "|---|---|", *toc, "", *body]).rstrip("\n") + "\n"


if __name__ == "__main__":
    if sys.argv[1:] not in ([], ["--markdown"]):
        sys.exit("usage: python -m rx.minion.moduledocs [--markdown]")
    sys.stdout.write(markdown())
