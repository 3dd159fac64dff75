"""Man pages for rx, rx-key, rx-run and rx-call, generated from the argparse definitions
(`rx.client.shellmodel`): NAME, SYNOPSIS, DESCRIPTION, OPTIONS by group, then the help's epilog (examples,
targeting, exit codes) as sections of their own.

    python -m rx.client.manpage --write share      # share/man/man1/NAME.1 (make docs; a test fails when stale)
    python -m rx.client.manpage rx | man -l -      # read one without installing it
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from rx.client.shellmodel import Command, command, commands, write_files

SEE_ALSO = ("rx", "rx-key", "rx-run", "rx-call")


def path(name: str) -> Path:
    return Path("man/man1") / f"{name}.1"


def _esc(text: str) -> str:
    """Plain text as roff: backslashes and hyphens escaped, no line taken for a request."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(("\\&" + line) if line.startswith((".", "'")) else line for line in text.split("\n"))


def _flag(flag: str) -> str:
    return f"\\fB{_esc(flag)}\\fR"


def _option(o: object) -> list[str]:
    from rx.client.shellmodel import Option
    assert isinstance(o, Option)
    value = f" \\fI{_esc(o.metavar)}\\fR" if o.takes_value else ""
    head = ", ".join(_flag(f) + value for f in o.flags)
    return [".TP", head, _esc(o.help or "")]


def _epilog(epilog: str) -> list[str]:
    """`title:` lines at the left margin become sections; the indented lines under them are kept as they are."""
    out: list[str] = []
    body: list[str] = []

    def flush() -> None:
        while body and not body[-1].strip():
            body.pop()
        if body:
            out.extend([".nf", *(_esc(line) for line in body), ".fi"])
        body.clear()
    for line in epilog.splitlines():
        title = re.fullmatch(r"(\S[^:]*?)(?: \(.*\))?:", line)
        if title:
            flush()
            out.append(f".SH {_esc(title.group(1).upper())}")
            if "(" in line:
                out.extend([_esc(line[len(title.group(1)):].strip().strip(":").strip("()")), ".PP"])
        else:
            body.append(line)
    flush()
    return out


def render(cmd: Command) -> str:
    name = cmd.name
    summary = cmd.description.split(".")[0].strip() or name
    lines = [f'.TH {_esc(name.upper())} 1 "" "rx" "rx manual"',
             ".\\\" generated from the argparse definitions by python -m rx.client.manpage (make docs): do not edit",
             ".SH NAME", f"{_esc(name)} \\- {_esc(summary[:1].lower() + summary[1:])}",
             ".SH SYNOPSIS", _esc(" ".join(cmd.usage.split())),
             ".SH DESCRIPTION", _esc(cmd.description)]
    if cmd.positionals:
        lines.append(".SS arguments")
        for p in cmd.positionals:
            lines.extend([".TP", f"\\fI{_esc(p.name.upper())}\\fR" + (" ..." if p.many else ""), _esc(p.help)])
    groups: dict[str, list] = {"options": []}
    for o in cmd.options:
        groups.setdefault(o.group or "options", []).append(o)
    lines.append(".SH OPTIONS")
    for group, options in groups.items():
        if group != "options":
            lines.append(f".SS {_esc(group)}")
        for o in options:
            lines.extend(_option(o))
    lines.extend(_epilog(cmd.epilog))
    lines.extend([".SH SEE ALSO", ", ".join(f"\\fB{_esc(n)}\\fR(1)" for n in SEE_ALSO if n != name) + ";",
                  "README.md and docs/ in the rx sources"])
    return "\n".join(lines) + "\n"


def generate() -> dict[Path, str]:
    return {path(cmd.name): render(cmd) for cmd in commands()}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m rx.client.manpage", description=__doc__.split("\n\n")[0])
    p.add_argument("--write", metavar="SHARE_DIR", help="write every page under this directory")
    p.add_argument("command", nargs="?", help="print one command's page")
    opts = p.parse_args(argv)
    if opts.write:
        write_files(generate(), opts.write)
        return
    if not opts.command:
        p.error("give a command, or --write DIR")
    sys.stdout.write(render(command(opts.command)))


if __name__ == "__main__":
    main()
