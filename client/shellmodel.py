"""The commands' argparse definitions as plain data, for the generated shell completions and man pages
(`rx.client.completion`, `rx.client.manpage`): one source, so neither can drift from the parsers."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

COMMANDS: dict[str, str] = {"rx": "rx.client.cli", "rx-key": "rx.client.keycli", "rx-run": "rx.client.runcli",
                            "rx-call": "rx.client.call"}
"""The commands that get completions and man pages, and the module whose build_parser() defines each."""

HINTS: dict[str, dict[str, str]] = {
    "rx": {"target": "minions", "fun": "functions", "config_dir": "dirs", "out_file": "files"},
    "rx-key": {"accept": "keys", "reject": "keys", "delete": "keys", "finger": "keys", "print_glob": "keys",
               "config_dir": "dirs", "gen_keys_dir": "dirs", "list_state": "words:acc un rej den all"},
    "rx-run": {"fun": "runners", "config_dir": "dirs"},
    "rx-call": {"fun": "functions", "config_dir": "dirs"},
}
"""What a value is, by argparse dest: minion ids (accepted keys), key ids (any state), function names, runner
names, directories, files, or `words:` a fixed list.  Anything else with choices completes to them; the rest is
free text."""

ATTACHED = ("--no-parse",)
"""Options whose value is only ever attached (`--no-parse=a,b`): bare, they take no word from the line."""

NODEGROUP_FLAGS = ("-N", "--nodegroup")
"""With one of these on rx's line, the target is a nodegroup name."""


@dataclass(frozen=True)
class Option:
    flags: tuple[str, ...]
    takes_value: bool
    choices: tuple[str, ...]
    metavar: str
    help: str
    hint: str
    group: str
    exclusive: tuple[str, ...] = ()
    """Every flag of the options this one excludes (itself included), as zsh wants it."""


@dataclass(frozen=True)
class Positional:
    name: str
    help: str
    many: bool
    hint: str


@dataclass(frozen=True)
class Command:
    name: str
    usage: str
    description: str
    epilog: str
    options: tuple[Option, ...]
    positionals: tuple[Positional, ...]

    @property
    def value_flags(self) -> list[str]:
        return [f for o in self.options if o.takes_value and not set(o.flags) & set(ATTACHED) for f in o.flags]


def parser_of(name: str) -> argparse.ArgumentParser:
    import importlib
    build: Callable[[], argparse.ArgumentParser] = importlib.import_module(COMMANDS[name]).build_parser
    return build()


def command(name: str, parser: argparse.ArgumentParser | None = None) -> Command:
    p = parser or parser_of(name)
    hints = HINTS.get(name, {})
    groups = {id(a): g.title or "" for g in p._action_groups for a in g._group_actions}
    exclusive: dict[int, tuple[str, ...]] = {}
    for mx in p._mutually_exclusive_groups:
        flags = tuple(f for a in mx._group_actions for f in a.option_strings)
        for a in mx._group_actions:
            exclusive[id(a)] = flags
    options, positionals = [], []
    formatter = p._get_formatter()
    for a in p._actions:
        if a.help == argparse.SUPPRESS:
            continue
        help_text = formatter._expand_help(a) if a.help else ""
        if isinstance(a, argparse._VersionAction) and not help_text:
            help_text = "print the version and exit"
        if not a.option_strings:
            positionals.append(Positional(a.dest, help_text, a.nargs in ("*", "+", argparse.REMAINDER),
                                          hints.get(a.dest, "")))
            continue
        takes = a.nargs != 0
        choices = tuple(str(c) for c in a.choices) if a.choices else ()
        group = groups.get(id(a), "")
        options.append(Option(tuple(a.option_strings), takes, choices,
                              a.metavar if isinstance(a.metavar, str) else (a.dest.upper() if takes else ""),
                              " ".join(help_text.split()), hints.get(a.dest, ""),
                              "options" if group in ("optional arguments", "options") else group,
                              exclusive.get(id(a), tuple(a.option_strings))))
    return Command(name, p.format_usage().removeprefix("usage: ").strip(), p.description or "", p.epilog or "",
                   tuple(options), tuple(positionals))


def commands() -> list[Command]:
    return [command(name) for name in COMMANDS]


def write_files(files: dict[Path, str], share_dir: str | Path) -> None:
    """Write generated files (paths relative to a share/ directory) under `share_dir`."""
    for rel, text in files.items():
        target = Path(share_dir) / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
