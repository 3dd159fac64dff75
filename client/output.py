"""Outputters: turn `{minion: return}` into text.  Data goes to stdout only.

The human outputters (nested, txt) escape terminal control characters in everything they print
(rx.client.termsafe), on a terminal or not (a pipe into `less -R` is a terminal too), unless
called with `escape=False`; json, jsonl, yaml and raw escape them in their own syntax and stay exact."""

from __future__ import annotations

import json
import math
import os
import sys
from typing import Any, Callable

from rx.client.cliargs import OUTPUTTERS  # declared with the CLIs' arguments: `rx --version` loads no outputter
from rx.client.termsafe import escape_controls

STREAMING = ("nested", "jsonl", "txt", "raw")
"""Outputters that print each minion as it returns (the others print one document at the end)."""
HUMAN = ("nested", "txt")
"""Outputters for people: they escape control characters (`escape=False` turns that off)."""

_GREEN, _RED, _YELLOW, _CYAN, _RESET = "\033[32m", "\033[31m", "\033[33m", "\033[36m", "\033[0m"


def use_color(stream: Any = sys.stdout, force: bool | None = None) -> bool:
    """Colour only on a TTY and never with NO_COLOR, unless forced either way."""
    if force is not None:
        return force
    return bool(stream.isatty()) and not os.environ.get("NO_COLOR")


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return repr(value)


def _jsonable(value: Any) -> Any:
    """NaN/Infinity are not JSON and bytes keys are not allowed: make them strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {(k.decode("utf-8", "replace") if isinstance(k, bytes) else k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def out_json(data: dict, indent: int | None = 4, **_: Any) -> str:
    return json.dumps(_jsonable(data), indent=indent, sort_keys=True, default=_json_default, allow_nan=False)


def out_jsonl(data: dict, **_: Any) -> str:
    """One compact JSON object per minion per line: {"id": ..., "ret": ...}."""
    return "\n".join(json.dumps(_jsonable({"id": k, "ret": v}), sort_keys=True, default=_json_default,
                                allow_nan=False) for k, v in data.items())


def _same(text: str) -> str:
    return text


def out_txt(data: dict, escape: bool = True, **_: Any) -> str:
    """`minion: value` lines; multi-line values get the minion name on every line."""
    esc = escape_controls if escape else _same
    lines = []
    for minion, value in data.items():
        text = value if isinstance(value, str) else json.dumps(_jsonable(value), sort_keys=True, default=_json_default)
        lines.extend(f"{esc(str(minion))}: {line}" for line in (esc(text).splitlines() or [""]))
    return "\n".join(lines)


def out_yaml(data: dict, indent: int | None = 2, **_: Any) -> str:
    import yaml  # here: `rx --version`, `rx -h` and the other outputters start without it (~25 ms)
    return yaml.safe_dump(_jsonable(data), default_flow_style=False, sort_keys=True,
                          indent=max(2, indent or 2)).rstrip("\n")


def out_raw(data: dict, **_: Any) -> str:
    return "\n".join(repr({k: v}) for k, v in data.items())


def _nested(value: Any, indent: int, lines: list[str], color: Callable[[str, str], str],
            esc: Callable[[str], str]) -> None:
    pad = " " * indent
    if isinstance(value, dict):
        lines.append(pad + ("----------" if value else "{}"))
        for k in sorted(value, key=str):
            lines.append(f"{pad}{color(_CYAN, esc(str(k)))}:")
            _nested(value[k], indent + 4, lines, color, esc)
    elif isinstance(value, list):
        if not value:
            lines.append(pad + "[]")
        for item in value:
            if isinstance(item, (dict, list)):
                lines.append(pad + "|_")
                _nested(item, indent + 2, lines, color, esc)
            else:
                lines.append(f"{pad}- {esc(str(item))}")
    elif isinstance(value, str) and "\n" in value:
        lines.extend(pad + line for line in esc(value).splitlines())
    else:
        lines.append(f"{pad}{esc(str(value))}")


def out_nested(data: dict, color: bool = False, status: dict[str, str] | None = None, escape: bool = True,
               **_: Any) -> str:
    """Salt-style nested text; minion names coloured by status (ok / failed / missing) on a TTY."""
    paint = (lambda code, text: f"{code}{text}{_RESET}") if color else (lambda code, text: text)
    esc = escape_controls if escape else _same
    lines: list[str] = []
    for minion in sorted(data):
        st = (status or {}).get(minion, "ok")
        code = {"ok": _GREEN, "failed": _RED}.get(st, _YELLOW)
        lines.append(paint(code, f"{esc(str(minion))}:"))
        _nested(data[minion], 4, lines, paint, esc)
    return "\n".join(lines)


FORMATTERS: dict[str, Callable[..., str]] = {
    "nested": out_nested,
    "json": out_json,
    "jsonl": out_jsonl,
    "yaml": out_yaml,
    "txt": out_txt,
    "raw": out_raw,
}


def render(name: str, data: dict, **opts: Any) -> str:
    return FORMATTERS[name](data, **opts)


def render_value(name: str, value: Any, **opts: Any) -> str:
    """A runner's return (any value, not `{minion: return}`): a dict as `render` shows it, a list or a scalar
    in the outputter's own way (nested: `- item` lines; json/yaml: one document; txt/jsonl: a line per item)."""
    if isinstance(value, dict):
        return render(name, value, **opts)
    if name == "json":
        return json.dumps(_jsonable(value), indent=opts.get("indent", 4), sort_keys=True, default=_json_default,
                          allow_nan=False)
    if name == "yaml":
        import yaml
        return yaml.safe_dump(_jsonable(value), default_flow_style=False, sort_keys=True).rstrip("\n")
    items = value if isinstance(value, list) else [value]
    if name == "jsonl":
        return "\n".join(json.dumps(_jsonable(v), sort_keys=True, default=_json_default) for v in items)
    if name == "raw":
        return repr(value)
    esc = escape_controls if opts.get("escape", True) else _same
    if name == "txt":
        return "\n".join(esc(v if isinstance(v, str) else json.dumps(_jsonable(v), sort_keys=True,
                                                                     default=_json_default)) for v in items)
    lines: list[str] = []
    paint = (lambda code, text: f"{code}{text}{_RESET}") if opts.get("color") else (lambda code, text: text)
    _nested(value, 0, lines, paint, esc)
    return "\n".join(lines)
