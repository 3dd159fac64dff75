"""Real local users and groups for the tests of users who are not root, and running `rx` as one of them.

`local_users` creates them (useradd, groupadd; a password set with chpasswd) and removes them after.
`run_as` runs the rx CLI with the user's uid, gids and home: with `runuser` when the user can execute
this interpreter, else (the interpreter lives under a directory only root can enter, as pyenv's under
/root) in a forked child of this process that imports the client, then drops to the user's ids with
setgroups/setgid/setuid and runs `rx.client.cli.main`: to the kernel (file access, SO_PEERCRED) it is
that user either way.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

CLIENT_MODULES = ("rx.client.cli", "rx.client.local", "rx.client.output", "rx.client.report", "rx.client.batch",
                  "rx.client.gather", "rx.client.userauth", "rx.client.userdoor", "rx.client.masterlink",
                  "rx.client.termsafe", "rx.transport.events", "rx.transport.zmq_transport", "rx.transport.usermsgs",
                  "rx.config", "rx.configdocs", "yaml", "json", "getpass", "pwd", "grp", "asyncio.unix_events",
                  "concurrent.futures.thread")
"""What the forked child imports before it drops root (it can no longer read the interpreter's files after)."""


@dataclass(frozen=True)
class LocalUser:
    name: str
    uid: int
    gid: int
    home: Path
    password: str
    groups: tuple[int, ...]


def _need(*tools: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("creating local users needs root (CI runs as root)")
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"no {', '.join(missing)} on this host")


@contextmanager
def local_users(count: int, group_members: int = 0) -> Iterator[tuple[list[LocalUser], str]]:
    """`count` new users (with homes under a temp dir and a random password); the first `group_members` of
    them are in a new group, whose name is returned too.  All removed afterwards."""
    _need("useradd", "userdel", "groupadd", "groupdel", "chpasswd")
    tag = secrets.token_hex(3)
    group = f"rxg{tag}"
    top = Path(tempfile.mkdtemp(prefix="rx-homes-"))
    os.chmod(top, 0o755)
    made: list[LocalUser] = []
    subprocess.run(["groupadd", group], check=True, capture_output=True)
    try:
        for n in range(count):
            name, home = f"rxu{n}{tag}", top / f"u{n}"
            home.mkdir(mode=0o700)
            extra = ["-G", group] if n < group_members else []
            subprocess.run(["useradd", "-M", "-d", str(home), "-s", "/usr/sbin/nologin", *extra, name], check=True,
                           capture_output=True)
            password = secrets.token_urlsafe(12)
            subprocess.run(["chpasswd"], input=f"{name}:{password}\n", text=True, check=True, capture_output=True)
            import pwd
            entry = pwd.getpwnam(name)
            os.chown(home, entry.pw_uid, entry.pw_gid)
            made.append(LocalUser(name, entry.pw_uid, entry.pw_gid, home, password,
                                  tuple(os.getgrouplist(name, entry.pw_gid))))
        yield made, group
    finally:
        for user in made:
            subprocess.run(["userdel", user.name], capture_output=True)
        subprocess.run(["groupdel", group], capture_output=True)
        shutil.rmtree(top, ignore_errors=True)


def open_to_users(path: Path) -> None:
    """Let other users traverse `path` and the directories above it that this test made (0700 temp dirs)."""
    for p in [path, *path.parents]:
        if str(p) in ("/", "/tmp"):
            break
        os.chmod(p, os.stat(p).st_mode | 0o011)


def _can_exec(user: LocalUser) -> bool:
    if shutil.which("runuser") is None:
        return False
    probe = subprocess.run(["runuser", "-u", user.name, "--", sys.executable, "-c", "import rx.client.cli"],
                           capture_output=True)
    return probe.returncode == 0


def run_as(user: LocalUser, *argv: str, input: str = "", timeout: float = 60.0) -> subprocess.CompletedProcess:
    """`rx ARGV` as `user` (stdin: `input`); output captured as text."""
    return _as(user, ["-m", "rx.client.cli", *argv], input, timeout)


def python_as(user: LocalUser, code: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    """`python -c CODE` as `user` (in the forked child: CODE run with exec)."""
    return _as(user, ["-c", code], "", timeout)


def _as(user: LocalUser, argv: list[str], input: str, timeout: float) -> subprocess.CompletedProcess:
    if _can_exec(user):
        cmd = ["runuser", "-u", user.name, "--", "env", f"HOME={user.home}", f"USER={user.name}",
               f"LOGNAME={user.name}", sys.executable, *argv]
        return subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
    return _forked(user, argv, input, timeout)


def _forked(user: LocalUser, argv: list[str], input: str, timeout: float) -> subprocess.CompletedProcess:
    import importlib
    for name in CLIENT_MODULES:
        importlib.import_module(name)
    with tempfile.TemporaryFile() as stdin, tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        stdin.write(input.encode())
        stdin.seek(0)
        pid = os.fork()
        if pid == 0:  # the child: become the user, run rx, never return into pytest
            code = 70
            try:
                for fd, f in ((0, stdin), (1, out), (2, err)):
                    os.dup2(f.fileno(), fd)
                sys.stdin, sys.stdout, sys.stderr = (open(0, closefd=False), open(1, "w", closefd=False),
                                                     open(2, "w", closefd=False))
                os.environ.update(HOME=str(user.home), USER=user.name, LOGNAME=user.name)
                os.setgroups(list(user.groups))
                os.setgid(user.gid)
                os.setuid(user.uid)
                os.chdir(user.home)
                try:
                    if argv[0] == "-c":
                        exec(compile(argv[1], "<python_as>", "exec"), {"__name__": "__main__"})
                    else:
                        from rx.client.cli import main
                        main(argv[2:])
                    code = 0
                except SystemExit as exc:
                    code = exc.code if isinstance(exc.code, int) else 1
            except BaseException as exc:  # noqa: BLE001 - reported through stderr and exit 70
                print(f"run_as child: {exc!r}", file=sys.stderr)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        deadline = time.monotonic() + timeout
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                raise subprocess.TimeoutExpired(argv, timeout)
            time.sleep(0.02)  # polling the child's exit with a deadline
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(argv, os.waitstatus_to_exitcode(status), out.read().decode(),
                                           err.read().decode())
