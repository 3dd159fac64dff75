"""Issue #13: Tab completion as a person gets it, in real bash, zsh and fish, with the generated scripts
(share/) and the installed `rx` on PATH: flags, fixed choices, minion and key ids from the key store,
function names (with what minions returned to `rx ... sys.list_functions`), runner names, and the
line's own `-c DIR`.  zsh runs interactively in a pty (zpty), its completion widget bound to a key."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rx.client.completion import paths
from tests.support.procs import DEADLINE, wait_for

ROOT = Path(__file__).resolve().parents[2]
SHARE = ROOT / "share"
ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def bash_complete(words: list[str]) -> set[str]:
    """COMPREPLY for the command line `words` (the last one is being completed)."""
    script = (f'source {paths(words[0])["bash"]}; COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); '
              f'_{words[0].replace("-", "_")}; printf "%s\\n" "${{COMPREPLY[@]}}"')
    r = subprocess.run(["bash", "-c", script, "bash", *words], capture_output=True, text=True, cwd=SHARE, env=ENV,
                       timeout=DEADLINE)
    assert r.returncode == 0, r.stderr
    return {line for line in r.stdout.splitlines() if line}


def fish_complete(line: str) -> set[str]:
    if shutil.which("fish") is None:
        pytest.skip("fish is not installed (make shells installs it)")
    name = line.split()[0]
    script = f"source {SHARE / paths(name)['fish']}; complete -C {quote(line)}"
    r = subprocess.run(["fish", "--no-config", "-c", script], capture_output=True, text=True, env=ENV,
                       timeout=DEADLINE)
    assert r.returncode == 0, r.stderr
    return {out.split("\t")[0] for out in r.stdout.splitlines() if out}


def quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


ZSH_DRIVER = r'''
zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z "PS1='' PROMPT='' RPROMPT=''"
zpty -w z "fpath=($1 \$fpath); autoload -U compinit; compinit -u -D"
zpty -w z 'compadd () { local -a __hits; builtin compadd -O __hits "$@"; print -rl -- $__hits >> '$2'; \
    builtin compadd "$@" }'
zpty -w z 'zle -C rxcomplete complete-word _main_complete'
zpty -w z 'rxtab() { zle rxcomplete; print -r -- DONE >> '$2'; }; zle -N rxtab; bindkey "^X" rxtab'
zpty -w -n z "$3"$'\x18'
while ! grep -q DONE $2 2>/dev/null; do sleep 0.05; done
zpty -d z
'''


def zsh_complete(line: str, tmp_path: Path) -> set[str]:
    """What zsh's completion widget offers for `line` in an interactive zsh: the driver types the line and a
    key bound to a widget that completes, then marks the end (typing anything after the key would be
    typeahead, which zsh's completion gives way to)."""
    if shutil.which("zsh") is None:
        pytest.skip("zsh is not installed (make shells installs it)")
    out = tmp_path / f"zsh-{time.monotonic_ns()}"
    driver = subprocess.Popen(["zsh", "-f", "-c", ZSH_DRIVER, "zsh", str(SHARE / "zsh" / "site-functions"), str(out),
                               line],
                              env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: out.exists() and "DONE" in out.read_text(), timeout=DEADLINE, what=f"zsh completing {line!r}")
        driver.wait(timeout=DEADLINE)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    return {w for w in out.read_text().splitlines() if w and w != "DONE"}


@pytest.fixture(scope="module")
def master_dir(tmp_path_factory) -> str:
    """A master config dir with keys on disk (no daemon needed: completion reads the key store)."""
    import asyncio

    from rx.config import load_master_config
    from rx.master.store.file_keys import FileKeyStore
    from rx.transport.crypto import Identity
    d = tmp_path_factory.mktemp("completion")
    (d / "master").write_text(f"root_dir: {d / 'root'}\nnodegroups:\n  webs: 'web*'\n")
    store = FileKeyStore(load_master_config(str(d)).pki_dir)

    async def fill():
        await store.prepare()
        for state, mid in (("accepted", "web1"), ("accepted", "web2"), ("accepted", "db1"), ("pending", "wnew")):
            await store.write(state, mid, Identity.generate().public)
    asyncio.run(fill())
    return str(d)


def cases(d: str) -> list[tuple[str, set[str]]]:
    """(command line, what completing its last word must offer exactly)."""
    return [
        (f"rx -c {d} w", {"web1", "web2"}),                           # accepted minions only
        (f"rx --config-dir {d} -N w", {"webs"}),                      # -N: nodegroups
        (f"rx -c {d} web1 test.p", {"test.ping", "test.provider", "test.providers"}),
        (f"rx -t 3 --out json -c {d} '*' cmd.run_", {"cmd.run_all", "cmd.run_stderr", "cmd.run_stdout"}),
        (f"rx --no-parse -c {d} db1 test.pin", {"test.ping"}),        # a bare --no-parse takes no word
        ("rx --out j", {"json", "jsonl"}),
        ("rx --hide", {"--hide-timeout"}),
        ("rx -l c", {"critical"}),
        (f"rx-key -c {d} -d w", {"web1", "web2", "wnew"}),            # keys in any state
        ("rx-key -l r", {"rej"}),
        ("rx-key --include-a", {"--include-accepted", "--include-all"}),
        (f"rx-run -c {d} manage.al", {"manage.alived"}),
        ("rx-call --local test.ec", {"test.echo"}),
    ]


def test_bash(master_dir):
    for line, expect in cases(master_dir):
        words = line.replace("'*'", "*").split(" ")
        assert bash_complete(words) == expect, line


def test_bash_with_option_values_after_equals(master_dir):
    # bash splits `--config-dir=DIR` into three words; the value still counts and is not a positional
    assert bash_complete(["rx", "--config-dir", "=", master_dir, "d"]) == {"db1"}
    assert bash_complete(["rx", "--out", "=", "y"]) == {"yaml"}


def test_fish(master_dir):
    for line, expect in cases(master_dir):
        assert fish_complete(line) == expect, line


def test_zsh(master_dir, tmp_path):
    for line, expect in cases(master_dir):
        got = zsh_complete(line, tmp_path)
        assert got == expect, (line, got)


def test_functions_minions_report_complete_too(sandbox):
    """A minion's own module (module_dirs) is unknown to the master host until `rx ... sys.list_functions`
    brings its name back; then Tab offers it."""
    sandbox.start_master()
    mods = sandbox.minion_dir("m1") / "root" / "mods"
    mods.mkdir(parents=True)
    (mods / "hello.py").write_text('__all__ = ["world"]\n\n\ndef world():\n    """Say hello."""\n    return "hi"\n')
    sandbox.start_minion("m1", module_dirs=["mods"])
    master_dir = str(sandbox.master_dir)
    assert "hello.world" not in bash_complete(["rx", "-c", master_dir, "m1", "hello."])
    r = sandbox.run_cli("rx", "m1", "sys.list_functions", "hello", "--out", "json")
    assert r.returncode == 0 and '"hello.world"' in r.stdout, r.stdout + r.stderr
    assert bash_complete(["rx", "-c", master_dir, "m1", "hello."]) == {"hello.world"}
    assert fish_complete(f"rx -c {master_dir} m1 hello.") == {"hello.world"}
