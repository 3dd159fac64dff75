"""Command-line words to job arguments, shared by `rx`, `rx-call` and `rx-run`: YAML scalars, `key=value`
keywords, multi-function argument groups, Salt's `--no-parse=NAME,...`, `--args-stdin` and log levels."""

from __future__ import annotations

import re

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (the CLIs' start-up)
if TYPE_CHECKING:
    from typing import Any, Iterable

ALL = "*"
"""`--no-parse` with no names (rx's form): every argument stays a string."""

_DEBUG, _INFO, _WARNING, _ERROR, _CRITICAL = 10, 20, 30, 40, 50  # logging's levels, without importing logging
LOG_LEVELS = {"all": _DEBUG, "garbage": _DEBUG, "trace": _DEBUG, "debug": _DEBUG, "profile": _DEBUG, "info": _INFO,
              "warning": _WARNING, "error": _ERROR, "critical": _CRITICAL, "quiet": _CRITICAL + 10}
"""Salt's console log levels and what they are here (rx has no levels below debug)."""
COMPLETE_KINDS = ("minions", "keys", "nodegroups", "functions", "runners")
"""What `rx --complete KIND` lists (rx.client.complete)."""
OUTPUTTERS = ("nested", "json", "jsonl", "yaml", "txt", "raw")
"""The `--out` formats (rx.client.output.FORMATTERS has one each)."""


class UsageError(Exception):
    pass


def parse_value(text: str) -> Any:
    """A CLI argument as a YAML scalar (so 1 is an int, true a bool); anything else stays a string."""
    import yaml

    from rx.client.plainyaml import load_plain  # text from rx-api's users too: no aliases, bounded integers
    try:
        value = load_plain(text)
    except yaml.YAMLError:
        return text
    if type(value) is int and not _DECIMAL.fullmatch(text.strip()):
        return text  # 0644 (a mode), 10:30 (a time), 0x1f: as typed, not YAML 1.1's octal/base-60/hex
    return value if _plain_yaml(value) and text.strip() else text


_DECIMAL = re.compile(r"[-+]?(0|[1-9][0-9]*)")


def _plain_yaml(value: Any) -> bool:
    """Only what msgpack carries and the master accepts: no dates or binary, string map keys, at any depth."""
    if isinstance(value, (int, float, bool, str, type(None))):
        return True
    if isinstance(value, list):
        return all(_plain_yaml(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain_yaml(v) for k, v in value.items())
    return False


def no_parse_names(value: str | bool | None) -> frozenset[str]:
    """`--no-parse`'s value as a set of keyword names; {ALL} for the bare flag (True, or '*')."""
    if value is True or value == ALL:
        return frozenset({ALL})
    if not value:
        return frozenset()
    return frozenset(n.strip() for n in str(value).split(",") if n.strip())


def split_args(raw: list[str], parse: bool = True, no_parse: Iterable[str] = ()) -> tuple[list, dict]:
    """`key=value` words become kwargs; the rest are positional.  Values are YAML scalars unless parse=False;
    the keywords named in `no_parse` (Salt's `--no-parse=NAME,...`) stay strings, and so does every
    argument when it holds ALL."""
    skip = frozenset(no_parse)
    if ALL in skip:
        parse = False
    conv = parse_value if parse else str
    args: list = []
    kwargs: dict = {}
    for item in raw:
        key, sep, value = item.partition("=")
        if sep and key.isidentifier():
            kwargs[key] = value if key in skip else conv(value)
        else:
            args.append(conv(item))
    return args, kwargs


def split_multi(funs: list[str], raw: list[str], separator: str, parse: bool = True) -> list[list]:
    """Argument groups of a multi-function job: `rx '*' test.ping,test.echo ,hi` -> [[], ["hi"]]."""
    groups: list[list] = [[] for _ in funs]
    idx = 0
    for word in raw:
        pieces = word.split(separator)
        for n, piece in enumerate(pieces):
            if n:
                idx += 1
            if idx >= len(funs):
                raise UsageError(f"more argument groups than functions ({len(funs)}); separate groups with "
                                 f"{separator!r}")
            if piece:
                groups[idx].append(parse_value(piece) if parse else piece)
    return groups


NO_PARSE_HELP = ("keyword arguments (name=value) whose values stay strings, as in Salt: --no-parse=name1,name2; "
                 "bare --no-parse: every argument stays a string")


def add_no_parse(parser: Any) -> None:
    parser.add_argument("--no-parse", metavar="NAME,...", help=NO_PARSE_HELP)


def cli_words(argv: list[str]) -> list[str]:
    """The command line as the parsers take it: a bare `--no-parse` (rx's all-strings form) becomes
    `--no-parse=*`, so it never takes the word after it (the target) as its value."""
    return [f"--no-parse={ALL}" if word == "--no-parse" else word for word in argv]


def stdin_words(lines: Iterable[str]) -> list[str]:
    """Salt's `--args-stdin`: each line of stdin is one more word of the command line (its line end cut)."""
    return [line.rstrip("\r\n") for line in lines]
