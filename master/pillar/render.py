"""Rendering one pillar file (or top.sls) into data: YAML, through Jinja first when the file asks for it.

The first line decides: `#!yaml` is YAML only, `#!jinja|yaml` Jinja then YAML, any other `#!` is an
error; without one, a file that starts (after blank space) with a Jinja tag (`{%`, `{{`, `{#`) goes
through Jinja, any other is YAML only.  Jinja runs sandboxed (`jinja2.sandbox.SandboxedEnvironment`:
no access to Python internals, files or modules) with the variables the compiler gives (`grains`, `id`,
`saltenv`, `sls`, `pillar`, `salt['grains.get']`, `salt['pillar.get']`); `{% include %}`, `{% import %}`
and `{% from %}` load templates from the same environment's roots, contained like sls files.  Its output
is bounded (MAX_RENDERED_BYTES).  YAML is loaded safely, timestamps kept as text (as Salt does), and
walked into plain values within MAX_NODES, so aliases cannot blow a small file up into a huge pillar.

Errors name the file and the line: the template's line for Jinja errors, the line of the rendered text
for YAML errors.  They never quote the file: YAML's snippet is left out, and an exception raised by
Python code inside a template is named by its type only (its message may quote pillar data).
"""

from __future__ import annotations

import datetime
import json
import os
import traceback
from typing import Any, Callable

import jinja2
import yaml
from jinja2.sandbox import SandboxedEnvironment

from rx.master.pillar.sources import PillarError, Roots, Source, template_parts

MAX_RENDERED_BYTES = 16 * 1024 * 1024
MAX_NODES = 500_000
"""Most values one file may hold once aliases are expanded (the wire's MAX_OBJECTS)."""
MAX_DEPTH = 48
_JINJA_START = ("{%", "{{", "{#")
_JINJA_MARKS = ("{{", "{%")
_PIPELINES = (["yaml"], ["jinja", "yaml"])
_JINJA_ERRORS = (jinja2.UndefinedError, jinja2.TemplateNotFound, jinja2.TemplateRuntimeError,
                 jinja2.sandbox.SecurityError)
"""Jinja's own errors, whose messages name things in the template, not data."""


class _YamlLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Safe YAML without the implicit timestamp: `2024-01-01` stays the text it is (Salt's loader does the same)."""


_YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def pipeline(text: str, where: str) -> tuple[list[str], str]:
    """The renderers of a file and its text without the shebang line (left empty, so line numbers hold)."""
    if text.startswith("#!"):
        first, nl, rest = text.partition("\n")
        names = [n.strip().lower() for n in first[2:].split("|")]
        if names not in _PIPELINES:
            raise PillarError(where, f"renderer {first[2:].strip()[:60]!r} is not available: rx renders pillar "
                                     "files with 'yaml' or 'jinja|yaml'", 1)
        return names, nl + rest
    return (["jinja", "yaml"] if text.lstrip().startswith(_JINJA_START) else ["yaml"]), text


def traverse(data: Any, key: str, default: Any = "", delimiter: str = ":") -> Any:
    """The value at `key` ('a:b:0' walks maps, and lists by index), else `default`."""
    for part in str(key).split(delimiter):
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and part.lstrip("-").isdigit() and -len(data) <= int(part) < len(data):
            data = data[int(part)]
        else:
            return default
    return data


def plain(value: Any, where: str, budget: list[int], depth: int = 0) -> Any:
    """`value` as plain data the wire carries (a date becomes its ISO text, a set a list, an integer too big
    for msgpack its digits); PillarError past MAX_NODES values (shared `budget`) or MAX_DEPTH levels."""
    budget[0] -= 1
    if budget[0] < 0:
        raise PillarError(where, f"holds more than {MAX_NODES} values (YAML aliases expanding?)")
    if depth > MAX_DEPTH:
        raise PillarError(where, f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        return {k if isinstance(k, (str, int, float, bool)) or k is None else str(k):
                plain(v, where, budget, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v, where, budget, depth + 1) for v in value]
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, int) and not isinstance(value, bool) and not -2**63 <= value < 2**64:
        return str(value)
    return value


class _Loader(jinja2.BaseLoader):
    """Templates of one environment, found in its roots as sls files are (contained)."""

    def __init__(self, renderer: "Renderer", env: str) -> None:
        self.renderer, self.env = renderer, env

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, Callable[[], bool]]:
        src = self.renderer.roots.find(self.env, template_parts(template, f"{self.env}:{template}"))
        if src is None:
            raise jinja2.TemplateNotFound(template)
        text = pipeline(Roots.read(src), src.shown)[1]
        mtime = _mtime(src.path)
        self.renderer.shown[src.path] = src.shown
        return text, src.path, lambda: _mtime(src.path) == mtime


def _mtime(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


class Renderer:
    """Renders files of the roots; keeps one sandboxed Jinja environment per pillar environment (its template
    cache is checked against each file's mtime)."""

    def __init__(self, roots: Roots) -> None:
        self.roots = roots
        self.shown: dict[str, str] = {}
        self._jinja: dict[str, SandboxedEnvironment] = {}

    def render(self, src: Source, context: dict[str, Any]) -> Any:
        """The data of `src`: plain values, None for an empty file."""
        return self.load(src, *self.render_text(src, context))

    def render_text(self, src: Source, context: dict[str, Any]) -> tuple[str, bool]:
        """The YAML text of `src` (rendered by Jinja if it asks for it), and whether Jinja rendered it."""
        renderers, text = pipeline(Roots.read(src), src.shown)
        return (self._render_jinja(src, context), True) if renderers[0] == "jinja" else (text, False)

    def load(self, src: Source, text: str, rendered: bool) -> Any:
        """The plain data of YAML `text` (of `src`; `rendered` by Jinja)."""
        try:
            data = yaml.load(text, Loader=_YamlLoader)  # noqa: S506 - a safe loader
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            problem = getattr(exc, "problem", None) or type(exc).__name__
            hint = " (the line is one of the text Jinja rendered)" if rendered else ""
            if not rendered and any(m in text for m in _JINJA_MARKS):
                hint = ("; this file was read as plain YAML: a file that uses Jinja must start with a Jinja tag or "
                        "with the line #!jinja|yaml")
            raise PillarError(src.shown, f"not valid YAML: {problem}{hint}", mark.line + 1 if mark else 0) from None
        return plain(data, src.shown, [MAX_NODES])

    def jinja(self, env: str) -> SandboxedEnvironment:
        jenv = self._jinja.get(env)
        if jenv is None:
            jenv = SandboxedEnvironment(loader=_Loader(self, env), undefined=jinja2.Undefined, autoescape=False,
                                        keep_trailing_newline=True, auto_reload=True,
                                        extensions=["jinja2.ext.do", "jinja2.ext.loopcontrols"])
            jenv.filters["yaml"] = lambda v: yaml.safe_dump(v, default_flow_style=True, width=2**20).strip()
            jenv.filters["json"] = lambda v: json.dumps(v, sort_keys=True)
            self._jinja[env] = jenv
        return jenv

    def _render_jinja(self, src: Source, context: dict[str, Any]) -> str:
        self.shown[src.path] = src.shown
        try:
            out, size = [], 0
            for chunk in self.jinja(src.env).get_template(src.rel).generate(**context):
                size += len(chunk)
                if size > MAX_RENDERED_BYTES:
                    raise PillarError(src.shown, f"Jinja rendered more than {MAX_RENDERED_BYTES // 2**20} MiB")
                out.append(chunk)
            return "".join(out)
        except PillarError as exc:  # from the loader: a template name that leaves the root, or too large
            where, line = self._template_line(exc, src)
            raise PillarError(where, f"{exc.where}: {exc.reason}" if exc.where != where else exc.reason,
                              line or exc.line) from None
        except jinja2.TemplateSyntaxError as exc:
            where = self.shown.get(exc.filename or "", src.shown)
            raise PillarError(where, f"Jinja syntax error: {exc.message}", exc.lineno) from None
        except Exception as exc:
            where, line = self._template_line(exc, src)
            if isinstance(exc, _JINJA_ERRORS):
                message = f"Jinja error: {type(exc).__name__}: {exc}"
            else:
                message = (f"Jinja error: the template raised {type(exc).__name__} (its message is not shown: it may "
                           "quote pillar data)")
            raise PillarError(where, message, line) from None

    def _template_line(self, exc: BaseException, src: Source) -> tuple[str, int]:
        """The template file and line an exception was raised at (Jinja maps its frames to template lines)."""
        for frame in reversed(traceback.extract_tb(exc.__traceback__)):
            if frame.filename in self.shown:
                return self.shown[frame.filename], frame.lineno or 0
        return src.shown, 0
