"""Running a program for a module function (private: not in MODULES; `cmd`, `archive`, `cron` and
`system` use it): an argv list, never a shell string; a timeout that kills the program and every
process it started; bounded capture (a command printing 100 MB keeps the first `output_limit`
bytes and says what it dropped, the rest is read and discarded); output decoded as UTF-8 with
replacement characters; and, when the minion runs as root, another user (`runas`, `group`).

The program stays in the job's process group, so `jobs.kill` and the minion's end still reach it.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import time
from dataclasses import dataclass, field

from rx.modules import CommandError

OUTPUT_LIMIT = 8_000_000
"""Bytes of output (stdout and stderr together) kept by default: a return string stays under the
wire's 8 MiB string limit."""
EXIT_DRAIN_SECONDS = 2.0
"""After the program exits, how long its output is still read while something it started in the
background holds the pipes open (a daemon that kept stdout): then the output so far is returned."""
_POLL_SECONDS = 0.25


@dataclass(frozen=True)
class Account:
    """Who a program runs as."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str


@dataclass
class Proc:
    """What became of one program run."""

    argv: list[str]
    pid: int
    retcode: int
    stdout: str
    stderr: str
    timed_out: bool = False
    dropped: dict[str, int] = field(default_factory=dict)
    """Bytes read and not kept, per stream ("stdout", "stderr"), when the output limit was reached."""

    def note(self, stream: str, limit: int) -> str:
        """The line saying what was dropped from `stream` ("" if nothing was)."""
        n = self.dropped.get(stream, 0)
        if not n:
            return ""
        return (f"[rx: output truncated: {n} more bytes of {stream} were dropped; the first {limit} bytes of "
                f"output are kept (output_limit=)]")


def account(runas: str | int | None, group: str | int | None = None) -> Account | None:
    """The account to switch to for `runas`/`group` (None: stay who we are).  Clear errors for an
    unknown user or group, and for a switch the minion cannot make (it does not run as root)."""
    import grp
    import pwd
    if runas in (None, "") and group in (None, ""):
        return None
    try:
        pw = pwd.getpwuid(os.geteuid()) if runas in (None, "") else (
            pwd.getpwuid(int(runas)) if isinstance(runas, int) or str(runas).isdigit() else pwd.getpwnam(str(runas)))
    except (KeyError, OverflowError):
        raise CommandError(f"runas: user {runas!r} does not exist") from None
    gid = pw.pw_gid
    if group not in (None, ""):
        try:
            gid = (grp.getgrgid(int(group)) if isinstance(group, int) or str(group).isdigit()
                   else grp.getgrnam(str(group))).gr_gid
        except (KeyError, OverflowError):
            raise CommandError(f"group: group {group!r} does not exist") from None
    groups = tuple(sorted(set(os.getgrouplist(pw.pw_name, gid)))) if runas not in (None, "") else ()
    if os.geteuid() != 0 and (pw.pw_uid != os.geteuid() or gid != os.getegid()):
        raise CommandError(f"runas={runas!r}/group={group!r}: the minion runs as uid {os.geteuid()}, not root, "
                           "so it cannot run programs as another user")
    return Account(pw.pw_name, pw.pw_uid, gid, groups, pw.pw_dir)


def user_env(acct: Account | None, env: dict[str, str]) -> dict[str, str]:
    """`env` with HOME, USER and LOGNAME of the account switched to."""
    if acct is not None:
        env.update(HOME=acct.home, USER=acct.name, LOGNAME=acct.name)
    return env


def run(argv: list[str], *, cwd: str | None = None, env: dict[str, str] | None = None,
        stdin: str | bytes | None = None, timeout: float | None = None, acct: Account | None = None,
        umask: int | None = None, output_limit: int = OUTPUT_LIMIT, merge_stderr: bool = False) -> Proc:
    """Run `argv` to its end (or its timeout) and return what it did.  A program that cannot be
    started (missing, not executable, bad cwd) is a CommandError naming it."""
    if not argv or not all(isinstance(a, str) for a in argv):
        raise CommandError("the command must be a non-empty list of strings")
    if any("\0" in a for a in argv):
        raise CommandError("the command contains a NUL byte")
    if timeout is not None and (not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0):
        raise CommandError(f"timeout must be a number of seconds > 0, got {timeout!r}")
    if not isinstance(output_limit, int) or isinstance(output_limit, bool) or output_limit < 0:
        raise CommandError(f"output_limit must be a number of bytes >= 0, got {output_limit!r}")
    if cwd is not None and (not os.path.isabs(cwd) or not os.path.isdir(cwd)):
        raise CommandError(f"cwd {cwd!r} is not an absolute path to a directory")
    extra: dict = {}
    if acct is not None:
        extra = {"user": acct.uid, "group": acct.gid}
        if os.geteuid() == 0:
            extra["extra_groups"] = list(acct.groups)
    data = stdin.encode() if isinstance(stdin, str) else stdin
    try:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.PIPE if data is not None else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
                                close_fds=True, umask=-1 if umask is None else umask, **extra)
    except FileNotFoundError:
        raise CommandError(f"cannot run {argv[0]!r}: no such file or command") from None
    except PermissionError:
        raise CommandError(f"cannot run {argv[0]!r}: permission denied") from None
    except OSError as exc:
        raise CommandError(f"cannot run {argv[0]!r}: {exc.strerror or exc}") from None
    return _communicate(proc, argv, data, timeout, output_limit)


def _communicate(proc: subprocess.Popen, argv: list[str], data: bytes | None, timeout: float | None,
                 limit: int) -> Proc:
    streams = {proc.stdout: "stdout"}
    if proc.stderr is not None:
        streams[proc.stderr] = "stderr"
    kept: dict[str, bytearray] = {name: bytearray() for name in streams.values()}
    dropped: dict[str, int] = {}
    room = limit
    sel = selectors.DefaultSelector()
    for pipe in streams:
        os.set_blocking(pipe.fileno(), False)
        sel.register(pipe, selectors.EVENT_READ)
    pending = memoryview(data or b"")
    if proc.stdin is not None:
        os.set_blocking(proc.stdin.fileno(), False)
        sel.register(proc.stdin, selectors.EVENT_WRITE)
    start = time.monotonic()
    deadline = start + timeout if timeout else None
    exited_at: float | None = None
    timed_out = False
    try:
        while sel.get_map():
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                timed_out = True
                break
            if exited_at is None and proc.poll() is not None:
                exited_at = now
            if exited_at is not None and now - exited_at >= EXIT_DRAIN_SECONDS:
                break
            wait = min(x for x in (_POLL_SECONDS, deadline and deadline - now,
                                   exited_at and exited_at + EXIT_DRAIN_SECONDS - now) if x)
            for key, _ in sel.select(max(wait, 0.001)):
                pipe = key.fileobj
                if pipe is proc.stdin:
                    try:
                        n = os.write(pipe.fileno(), pending[:65536])
                        pending = pending[n:]
                    except BlockingIOError:
                        continue
                    except BrokenPipeError:
                        pending = pending[:0]
                    if not pending:
                        sel.unregister(pipe)
                        pipe.close()
                    continue
                try:
                    chunk = os.read(pipe.fileno(), 65536)
                except BlockingIOError:
                    continue
                if not chunk:
                    sel.unregister(pipe)
                    continue
                name = streams[pipe]
                take = chunk[:room]
                kept[name] += take
                room -= len(take)
                if len(take) < len(chunk):
                    dropped[name] = dropped.get(name, 0) + len(chunk) - len(take)
        if not timed_out:
            try:
                proc.wait(None if deadline is None else max(deadline - time.monotonic(), 0.001))
            except subprocess.TimeoutExpired:
                timed_out = True
        if timed_out:
            kill_tree(proc.pid)
            proc.wait()
    finally:
        sel.close()
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
        if proc.returncode is None:
            kill_tree(proc.pid)
            proc.wait()
    return Proc(argv=argv, pid=proc.pid, retcode=proc.returncode, timed_out=timed_out, dropped=dropped,
                stdout=kept["stdout"].decode("utf-8", "replace"),
                stderr=kept.get("stderr", bytearray()).decode("utf-8", "replace"))


def kill_tree(pid: int) -> None:
    """SIGKILL `pid` and every process descended from it (found through /proc before any is killed,
    so the orphans of a killed shell are still known as its children)."""
    for _ in range(2):  # a second pass for what was forked while the first one ran
        victims = [pid, *_descendants(pid)]
        for p in reversed(victims):
            try:
                os.kill(p, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
            ppid = int(stat.rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), ()):
            out.append(child)
            todo.append(child)
    return out
