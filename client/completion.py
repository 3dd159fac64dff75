"""Shell completion for rx, rx-key, rx-run and rx-call in bash, zsh and fish, generated from the argparse
definitions (`rx.client.shellmodel`).  Flags and fixed choices are written into the scripts; minion ids, key
ids, nodegroups, function and runner names come at Tab time from `rx --complete KIND` (rx.client.complete),
with the line's own `-c DIR` passed along.

    python -m rx.client.completion --write share     # what `make docs` runs; a test fails when stale

The files land where each shell looks for them under a prefix (`make install-completion`, the wheel's data
files): share/bash-completion/completions/NAME, share/zsh/site-functions/_NAME,
share/fish/vendor_completions.d/NAME.fish."""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from pathlib import Path

from rx.client.shellmodel import ATTACHED, NODEGROUP_FLAGS, Command, Option, commands, write_files

HEADER = "generated from the argparse definitions by `python -m rx.client.completion` (make docs): do not edit"
DYNAMIC = ("minions", "keys", "functions", "runners")


def paths(name: str) -> dict[str, Path]:
    return {"bash": Path("bash-completion/completions") / name, "zsh": Path("zsh/site-functions") / f"_{name}",
            "fish": Path("fish/vendor_completions.d") / f"{name}.fish"}


def _ident(name: str) -> str:
    return "_" + name.replace("-", "_")


def _words(hint: str, option: Option | None = None) -> list[str]:
    if hint.startswith("words:"):
        return hint[6:].split()
    return list(option.choices) if option is not None else []


# ---------------------------------------------------------------- bash

_BASH_NAMES = '''_rx_complete_names() {  # KIND [CONFIG_DIR]: names from rx --complete
    rx --complete "$1" ${2:+-c "$2"} 2>/dev/null
}
'''


def _bash_case(hint: str, words: list[str]) -> str:
    if words:
        return f'COMPREPLY=($(compgen -W {shlex.quote(" ".join(words))} -- "$cur"))'
    if hint == "dirs":
        return 'COMPREPLY=($(compgen -d -- "$cur"))'
    if hint == "files":
        return 'COMPREPLY=($(compgen -f -- "$cur"))'
    if hint in DYNAMIC or hint == "nodegroups":
        return f'COMPREPLY=($(compgen -W "$(_rx_complete_names {hint} "$cfg")" -- "$cur"))'
    return "COMPREPLY=()"


def bash(cmd: Command) -> str:
    fn = _ident(cmd.name)
    flags = " ".join(f for o in cmd.options for f in o.flags)
    valued = " ".join(cmd.value_flags)
    cases = []
    for o in cmd.options:
        if o.takes_value:
            cases.append(f"        {'|'.join(o.flags)}) {_bash_case(o.hint, _words(o.hint, o))}; return;;")
    pos_cases = []
    for i, p in enumerate(cmd.positionals):
        action = _bash_case(p.hint, _words(p.hint))
        if cmd.name == "rx" and p.name == "target":
            action = f'[[ -n "$ng" ]] && {_bash_case("nodegroups", [])} || {action}'
        if p.many or not p.hint:
            action = "compopt -o default 2>/dev/null; COMPREPLY=()" if not p.hint else action
        label = f"{i})" if not p.many else "*)"
        pos_cases.append(f"        {label} {action};;")
    ng = f"\n            {'|'.join(NODEGROUP_FLAGS)}) ng=1;;" if cmd.name == "rx" else ""
    positions = f"""
    case $n in
{chr(10).join(pos_cases)}
    esac""" if pos_cases else ""
    return f'''# bash completion for {cmd.name}: {HEADER}
{_BASH_NAMES}
{fn}() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    local valued=" {valued} " cfg="" ng="" n=0 i w
    if [[ "$cur" == "=" ]]; then cur=""; elif [[ "$prev" == "=" ]]; then prev="${{COMP_WORDS[COMP_CWORD-2]}}"; fi
    for ((i=1; i<COMP_CWORD; i++)); do
        w="${{COMP_WORDS[i]}}"
        case "$w" in
            -c|--config-dir) cfg="${{COMP_WORDS[i+1]}}"; [[ "$cfg" == "=" ]] && cfg="${{COMP_WORDS[i+2]}}";;{ng}
        esac
        if [[ "${{COMP_WORDS[i+1]}}" == "=" ]]; then  # --opt=value: bash splits it in three words
            ((i+=2))
        elif [[ "$valued" == *" $w "* ]]; then
            ((i++))
        elif [[ "$w" != -* && "$w" != "=" ]]; then
            ((n++))
        fi
    done
    [[ "$cur" == "=" ]] || case "$prev" in
{chr(10).join(cases)}
    esac
    if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "{flags}" -- "$cur"))
        return
    fi{positions}
}}
complete -F {fn} {cmd.name}
'''


# ---------------------------------------------------------------- zsh

def _zsh_text(text: str) -> str:
    first = re.split(r"(?<=[.;])\s|\s\(", text, maxsplit=1)[0].rstrip(".;")
    return re.sub(r"[\[\]`:\\]", "", first).replace("'", "'\\''")[:80]


def _zsh_action(hint: str, words: list[str]) -> str:
    if words:
        return "(" + " ".join(words) + ")"
    return {"dirs": "_files -/", "files": "_files"}.get(hint, f"->{hint}" if hint else " ")


def zsh(cmd: Command) -> str:
    specs = []
    for o in cmd.options:
        excl = "(" + " ".join(o.exclusive) + ")" if len(o.exclusive) > 1 else ""
        excl = excl if excl else ("(" + " ".join(o.flags) + ")" if len(o.flags) > 1 else "")
        def form(f: str) -> str:
            if not o.takes_value:
                return f
            return f + ("+" if not f.startswith("--") else "=-" if f in ATTACHED else "=")
        flags = "{" + ",".join(form(f) for f in o.flags) + "}" if len(o.flags) > 1 else form(o.flags[0])
        value = ""
        if o.takes_value:
            value = f":{o.metavar.lower() or 'value'}:{_zsh_action(o.hint, _words(o.hint, o))}"
        specs.append(f"'{excl}'{flags}'[{_zsh_text(o.help)}]{value}'" if excl else
                     f"'{flags}[{_zsh_text(o.help)}]{value}'")
    for i, p in enumerate(cmd.positionals):
        action = _zsh_action(p.hint, _words(p.hint)) if p.hint else "_files"
        specs.append(f"'{'*' if p.many else i + 1}:{p.name}:{action}'")
    states = []
    for hint in sorted({p.hint for p in cmd.positionals} | {o.hint for o in cmd.options} & {*DYNAMIC}):
        if hint in DYNAMIC:
            kind = hint
            if cmd.name == "rx" and hint == "minions":
                kind = f"$([[ -n ${{opt_args[(I)({'|'.join(NODEGROUP_FLAGS)})]}} ]] && echo nodegroups || echo minions)"
            states.append(f"        ({hint}) _rx_complete_names {kind} {hint};;")
    body = " \\\n        ".join(specs)
    return f'''#compdef {cmd.name}
# zsh completion for {cmd.name}: {HEADER}

_rx_complete_names() {{  # KIND LABEL: names from rx --complete, with the line's -c DIR
    local cfg=${{opt_args[-c]:-${{opt_args[--config-dir]}}}}
    local -a names cfgopt
    [[ -n $cfg ]] && cfgopt=(-c ${{(Q)cfg}})
    names=(${{(f)"$(rx --complete $1 $cfgopt 2>/dev/null)"}})
    _wanted $2 expl $2 compadd -a names
}}

{_ident(cmd.name)}() {{
    local curcontext="$curcontext" state line ret=1
    typeset -A opt_args
    _arguments -s -S \\
        {body} && ret=0
    case $state in
{chr(10).join(states)}
    esac
    return ret
}}

{_ident(cmd.name)} "$@"
'''


# ---------------------------------------------------------------- fish

def _fish_text(text: str) -> str:
    first = re.split(r"(?<=[.;])\s|\s\(", text, maxsplit=1)[0].rstrip(".;")
    return first.replace("\\", "").replace("'", "\\'")[:80]


def _fish_args(hint: str, words: list[str]) -> str:
    if words:
        return f" -x -a '{' '.join(words)}'"
    if hint == "dirs":
        return " -x -a '(__fish_complete_directories)'"
    if hint == "files":
        return " -r -F"
    if hint:
        return f" -x -a '(__rx_complete_names {hint})'"
    return " -x"


def fish(cmd: Command) -> str:
    c = cmd.name
    lines = [f"# fish completion for {c}: {HEADER}", "",
             "function __rx_complete_names --description 'names from rx --complete, with the line\\'s -c DIR'",
             "    set -l words (commandline -opc)",
             "    set -l cfg",
             "    for i in (seq (count $words))",
             "        switch $words[$i]",
             "            case -c --config-dir",
             "                set cfg -c $words[(math $i + 1)]",
             "            case '--config-dir=*'",
             "                set cfg -c (string replace -- --config-dir= '' $words[$i])",
             "        end",
             "    end",
             "    set -l kind $argv[1]",
             f"    if test $kind = minions; and begin; contains -- {NODEGROUP_FLAGS[0]} $words; "
             f"or contains -- {NODEGROUP_FLAGS[1]} $words; end",
             "        set kind nodegroups",
             "    end",
             "    rx --complete $kind $cfg 2>/dev/null",
             "end", "",
             f"function {_ident(c)}_position --description 'the number of positional words before the cursor'",
             "    set -l valued " + " ".join(cmd.value_flags),
             "    set -l words (commandline -opc)",
             "    set -l n 0",
             "    set -l skip 0",
             "    for w in $words[2..-1]",
             "        if test $skip = 1",
             "            set skip 0",
             "        else if contains -- $w $valued",
             "            set skip 1",
             "        else if not string match -q -- '-*' $w",
             "            set n (math $n + 1)",
             "        end",
             "    end",
             "    test $n = $argv[1]",
             "end", "",
             f"complete -c {c} -f"]
    for o in cmd.options:
        parts = []
        for f in o.flags:
            if f.startswith("--"):
                parts.append(f"-l {f[2:]}")
            elif len(f) == 2:
                parts.append(f"-s {f[1]}")
            else:
                parts.append(f"-o {f[1:]}")
        value = _fish_args(o.hint, _words(o.hint, o)) if o.takes_value else ""
        lines.append(f"complete -c {c} {' '.join(parts)}{value} -d '{_fish_text(o.help)}'")
    for i, p in enumerate(cmd.positionals):
        if p.many or not p.hint:
            continue
        args = _fish_args(p.hint, _words(p.hint)).replace(" -x", "").replace(" -r", "")
        lines.append(f"complete -c {c} -n '{_ident(c)}_position {i}'{args} -d '{_fish_text(p.help)}'")
    return "\n".join(lines) + "\n"


GENERATORS = {"bash": bash, "zsh": zsh, "fish": fish}


def generate() -> dict[Path, str]:
    """Every completion file, by its path under the share/ directory."""
    out = {}
    for cmd in commands():
        for shell, path in paths(cmd.name).items():
            out[path] = GENERATORS[shell](cmd)
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m rx.client.completion", description=__doc__.split("\n\n")[0])
    p.add_argument("--write", metavar="SHARE_DIR", help="write every file under this directory")
    p.add_argument("shell", nargs="?", choices=GENERATORS, help="print one shell's script for a command")
    p.add_argument("command", nargs="?", default="rx", help="the command (default rx)")
    opts = p.parse_args(argv)
    if opts.write:
        write_files(generate(), opts.write)
        return
    if not opts.shell:
        p.error("give a shell, or --write DIR")
    from rx.client.shellmodel import command
    sys.stdout.write(GENERATORS[opts.shell](command(opts.command)))


if __name__ == "__main__":
    main()
