"""Outputters: turn `{minion: return}` into text.  Data goes to stdout only."""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Callable

import yaml

OUTPUTTERS = ("nested", "json", "yaml", "raw")

_GREEN, _RED, _YELLOW, _CYAN, _RESET = "\033[32m", "\033[31m", "\033[33m", "\033[36m", "\033[0m"


def use_color(stream: Any = sys.stdout, force: bool | None = None) -> bool:
    if force is not None:
        return force
    return stream.isatty() and not os.environ.get("NO_COLOR")


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return repr(value)


def out_json(data: dict, indent: int | None = 4, **_: Any) -> str:
    return json.dumps(data, indent=indent, sort_keys=True, default=_json_default)


def out_yaml(data: dict, **_: Any) -> str:
    return yaml.safe_dump(data, default_flow_style=False, sort_keys=True).rstrip("\n")


def out_raw(data: dict, **_: Any) -> str:
    return "\n".join(repr({k: v}) for k, v in data.items())


def _nested(value: Any, indent: int, lines: list[str], color: Callable[[str, str], str]) -> None:
    pad = " " * indent
    if isinstance(value, dict):
        lines.append(pad + ("----------" if value else "{}"))
        for k in sorted(value, key=str):
            lines.append(f"{pad}{color(_CYAN, str(k))}:")
            _nested(value[k], indent + 4, lines, color)
    elif isinstance(value, list):
        if not value:
            lines.append(pad + "[]")
        for item in value:
            if isinstance(item, (dict, list)):
                lines.append(pad + "|_")
                _nested(item, indent + 2, lines, color)
            else:
                lines.append(f"{pad}- {item}")
    elif isinstance(value, str) and "\n" in value:
        lines.extend(pad + line for line in value.splitlines())
    else:
        lines.append(f"{pad}{value}")


def out_nested(data: dict, color: bool = False, status: dict[str, str] | None = None, **_: Any) -> str:
    """Salt-style nested text; minion names coloured by status (ok / failed / missing) on a TTY."""
    paint = (lambda code, text: f"{code}{text}{_RESET}") if color else (lambda code, text: text)
    lines: list[str] = []
    for minion in sorted(data):
        st = (status or {}).get(minion, "ok")
        code = {"ok": _GREEN, "failed": _RED, "missing": _YELLOW}.get(st, _GREEN)
        lines.append(paint(code, f"{minion}:"))
        _nested(data[minion], 4, lines, paint)
    return "\n".join(lines)


FORMATTERS: dict[str, Callable[..., str]] = {
    "nested": out_nested,
    "json": out_json,
    "yaml": out_yaml,
    "raw": out_raw,
}


def render(name: str, data: dict, **opts: Any) -> str:
    return FORMATTERS[name](data, **opts)
