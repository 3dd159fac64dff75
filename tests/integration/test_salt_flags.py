"""Issue #13: the `rx` flags Salt users type, on real daemons.  -p draws its bar on a terminal (a pty) and
nothing on a pipe; --async says `Executed command with job ID` on a terminal only; --show-jid,
--hide-timeout, --out-file-append, --args-stdin, --no-parse=NAME, --batch-size, -s, -l, -V.

The fleet (one for the module): minions m1 and m2, and 'ghost', an accepted key with no minion."""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import shutil
import struct
import subprocess
import tempfile
import termios
import time
from pathlib import Path
from typing import Iterator

import pytest

from rx.transport.crypto import Identity
from tests.support.procs import DEADLINE, processes_mentioning
from tests.support.sandbox import Sandbox, file_accepted_key

JID = re.compile(r"^\d{20}$")
QUICK = ("-t", "1", "--gather-job-timeout", "1")


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    root = Path(tempfile.mkdtemp(prefix="rx-it-flags-"))
    sandbox = Sandbox(root)
    try:
        sandbox.start_master()
        sandbox.start_minions(["m1", "m2"])
        file_accepted_key(sandbox.cfg, "ghost", Identity.generate().public)
        yield sandbox
    finally:
        sandbox.close()
        leftovers = processes_mentioning(str(root))
        shutil.rmtree(root, ignore_errors=True)
    assert not leftovers, f"processes left running: {leftovers}"


def rx(box: Sandbox, *args: str, **kw) -> subprocess.CompletedProcess:
    return box.run_cli("rx", *args, **kw)


def rx_on_terminal(box: Sandbox, *args: str, stderr_pipe: bool = False) -> tuple[int, str, str]:
    """Run rx with stdout (and stderr, unless `stderr_pipe`) on a pseudo-terminal of 80x24, as a person
    would; returns (exit code, what the terminal showed, what went to the stderr pipe)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    argv = [*box.command("rx"), "-c", str(box.master_dir), *args]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave,
                            stderr=subprocess.PIPE if stderr_pipe else slave)
    os.close(slave)
    shown = b""
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every writer closed its end
                    break
                if not chunk:
                    break
                shown += chunk
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=DEADLINE)
        err = proc.stderr.read().decode() if proc.stderr else ""
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return code, shown.decode(errors="replace"), err


def test_progress_bar_on_a_terminal(box):
    code, shown, _ = rx_on_terminal(box, "-p", "-L", "m1,m2", "test.sleep", "2", "--out", "txt")
    assert code == 0, shown
    assert "0/2 returned" in shown, shown  # drawn as soon as the job is out, before any return
    assert "2/2 returned" in shown, shown
    assert re.search(r"\[#{10,}\]  2/2 returned", shown), shown  # a full bar at the end
    assert "m1: true\r\n" in shown and "m2: true\r\n" in shown
    assert shown.endswith("\r\x1b[K"), "the bar is erased at the end"


def test_progress_bar_draws_nothing_on_a_pipe(box):
    r = rx(box, "-p", "-L", "m1,m2", "test.sleep", "1", "--out", "txt")
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.splitlines()) == ["m1: true", "m2: true"]
    assert r.stderr == ""  # no bar, no carriage returns, no escapes
    # stdout on a terminal, stderr on a pipe: still nothing, the bar goes to stderr only
    code, shown, err = rx_on_terminal(box, "-p", "-L", "m1,m2", "test.ping", "--out", "txt", stderr_pipe=True)
    assert code == 0 and err == "" and "returned" not in shown


def test_async_says_the_jid_in_salts_words_on_a_terminal_and_bare_on_a_pipe(box):
    code, shown, _ = rx_on_terminal(box, "--async", "m1", "test.ping")
    assert code == 0
    assert re.fullmatch(r"Executed command with job ID: \d{20}\s*", shown), shown
    r = rx(box, "--async", "m1", "test.ping")
    assert r.returncode == 0 and JID.match(r.stdout.strip()), r.stdout
    code, shown, _ = rx_on_terminal(box, "--async", "m1", "test.ping", "--out", "json")
    assert code == 0 and JID.match(shown.strip()), shown
    r = rx(box, "--async", "nobody", "test.ping")
    assert r.returncode == 4 and r.stdout == ""


def test_show_jid_comes_first_and_keeps_json_parseable(box):
    r = rx(box, "-L", "m1,m2", "test.ping", "--show-jid", "--out", "txt")
    lines = r.stdout.splitlines()
    assert r.returncode == 0 and lines[0].startswith("jid: ") and JID.match(lines[0][5:]), r.stdout
    assert sorted(lines[1:]) == ["m1: true", "m2: true"]
    r = rx(box, "-L", "m1,m2", "test.ping", "--show-jid", "--out", "json")
    assert json.loads(r.stdout) == {"m1": True, "m2": True}
    jid = re.search(r"^jid: (\d{20})$", r.stderr, re.M)
    assert r.returncode == 0 and jid, r.stderr


def test_hide_timeout_leaves_missing_minions_out_and_still_exits_3(box):
    r = rx(box, "*", "test.ping", "--out", "json", *QUICK)
    assert r.returncode == 3 and set(json.loads(r.stdout)) == {"m1", "m2", "ghost"}
    r = rx(box, "*", "test.ping", "--out", "json", "--hide-timeout", *QUICK)
    assert r.returncode == 3 and json.loads(r.stdout) == {"m1": True, "m2": True}
    r = rx(box, "*", "test.ping", "--out", "txt", "--hide-timeout", *QUICK)
    assert sorted(r.stdout.splitlines()) == ["m1: true", "m2: true"] and "ghost" not in r.stdout


def test_out_file_append(box, tmp_path):
    out = tmp_path / "out.txt"
    out.write_text("before\n")
    for _ in range(2):
        r = rx(box, "m1", "test.echo", "hi", "--out", "txt", "--out-file", str(out), "--out-file-append")
        assert r.returncode == 0 and r.stdout == ""
    assert out.read_text() == "before\nm1: hi\nm1: hi\n"
    r = rx(box, "m1", "test.echo", "hi", "--output", "txt", "--output-file", str(out))
    assert r.returncode == 0 and out.read_text() == "m1: hi\n"
    r = rx(box, "m1", "test.ping", "--out-file-append")
    assert r.returncode == 2 and "--out-file-append goes with --out-file" in r.stderr


def test_args_stdin_and_no_parse_names(box):
    r = rx(box, "m1", "test.arg", "first", "--args-stdin", "--out", "json", input="ls -l | wc -l\nk=1\n--static\n")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["m1"] == {"args": ["first", "ls -l | wc -l"], "kwargs": {"k": 1}}
    r = rx(box, "m1", "test.arg", "1", "k=1", "j=2", "--no-parse=k", "--out", "json")
    assert json.loads(r.stdout)["m1"] == {"args": [1], "kwargs": {"k": "1", "j": 2}}
    r = rx(box, "--no-parse", "m1", "test.arg", "1", "k=1", "--out", "json")  # rx's bare form: all strings
    assert json.loads(r.stdout)["m1"] == {"args": ["1"], "kwargs": {"k": "1"}}


def test_salt_spellings(box):
    r = rx(box, "-L", "m1,m2", "test.ping", "--batch-size", "1", "--out", "json", "-s")
    assert r.returncode == 0 and json.loads(r.stdout) == {"m1": True, "m2": True}
    r = rx(box, "-V")
    assert r.returncode == 0 and "pyzmq" in r.stdout
    r = rx(box, "--documentation", "test.ping")
    assert r.returncode == 0 and "test.ping:" in r.stdout
    r = rx(box, "m1", "test.ping", "-l", "debug", "--no-colour", "--output-indent", "2", "--out", "json")
    assert r.returncode == 0 and json.loads(r.stdout) == {"m1": True}
    assert re.search(r"^\[DEBUG\] job \d{20} published to 1 minion", r.stderr, re.M), r.stderr
    r = rx(box, "m1", "test.ping", "-l", "quiet")
    assert r.returncode == 0 and r.stderr == ""
    r = rx(box, "m1", "test.ping", "-l", "loud")
    assert r.returncode == 2 and "invalid choice: 'loud'" in r.stderr
