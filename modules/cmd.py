"""Run commands on the minion, with Salt's function and argument names.

A command is a string or an argv list.  A list never goes through a shell.  A string goes to the
shell (`shell -c cmd`) unless `python_shell=False`, which splits it like a shell would (shlex) and
runs it directly: Salt's default for a command typed on the CLI is the shell, and every rx job
comes from an operator, so rx keeps that default.  The job's retcode is the command's exit status
(0 with `ignore_retcode=True`, or when the status is in `success_retcodes`).

Output is kept up to `output_limit` bytes (stdout and stderr together, default 8,000,000); past
it, the rest is read and dropped and a line says how much.  Bytes that are not UTF-8 come back as
replacement characters.  `timeout` kills the command and everything it started.  `runas`/`group`
need the minion to run as root.
"""

from __future__ import annotations

import os
import shlex
from typing import Any

from rx.modules import CommandError, ExecContext, Result
from rx.modules._proc import OUTPUT_LIMIT, Proc, account, run as _run_argv, user_env

__all__ = ["run", "run_all", "run_stdout", "run_stderr", "retcode", "shell", "script", "which", "has_exec"]

_OPTIONS = ("cwd", "stdin", "runas", "group", "shell", "python_shell", "env", "clean_env", "rstrip", "umask",
            "hide_output", "timeout", "ignore_retcode", "prepend_path", "success_retcodes", "output_limit")
_SCRIPT_MAX_BYTES = 16 * 2**20


def _default_shell() -> str:
    """The login shell of the user the minion runs as, when it is a real shell; else /bin/sh."""
    import pwd
    try:
        sh = pwd.getpwuid(os.geteuid()).pw_shell
    except KeyError:
        return "/bin/sh"
    if sh and os.path.isabs(sh) and os.access(sh, os.X_OK) and os.path.basename(sh) not in ("nologin", "false"):
        return sh
    return "/bin/sh"


def _shell_path(shell: Any) -> str:
    if shell in (None, ""):
        return _default_shell()
    found = which(str(shell)) if not os.path.isabs(str(shell)) else str(shell)
    if not found or not os.access(found, os.X_OK):
        raise CommandError(f"shell {shell!r} is not an executable")
    return found


def _argv(cmd: Any, python_shell: Any, shell: Any) -> list[str]:
    """The argv for `cmd`: a list as given; a string through the shell, or split when python_shell=False."""
    if isinstance(cmd, (list, tuple)):
        if not cmd:
            raise CommandError("cmd: the argv list is empty")
        return [_word(a) for a in cmd]
    if isinstance(cmd, bool):  # `cmd.run true` arrives as a YAML boolean
        cmd = "true" if cmd else "false"
    elif isinstance(cmd, (int, float)):
        cmd = str(cmd)
    if not isinstance(cmd, str) or not cmd.strip():
        raise CommandError(f"cmd must be a non-empty command string or argv list, got {cmd!r}")
    if python_shell is None or python_shell is True:
        return [_shell_path(shell), "-c", cmd]
    try:
        argv = shlex.split(cmd)
    except ValueError as exc:
        raise CommandError(f"cannot split {cmd!r} into words (python_shell=False): {exc}") from None
    if not argv:
        raise CommandError(f"cmd {cmd!r} has no words")
    return argv


def _word(a: Any) -> str:
    if isinstance(a, (dict, list, tuple)) or a is None:
        raise CommandError(f"cmd: argv items must be strings or numbers, got {a!r}")
    return str(a)


def _environment(env: Any, clean_env: bool, prepend_path: Any) -> dict[str, str]:
    if isinstance(env, list):  # Salt also takes a list of one-key maps
        if not all(isinstance(e, dict) for e in env):
            raise CommandError("env must be a mapping of variable to value")
        env = {k: v for e in env for k, v in e.items()}
    if env is not None and not isinstance(env, dict):
        raise CommandError(f"env must be a mapping of variable to value, got {env!r}")
    out = {} if clean_env else dict(os.environ)
    for k, v in (env or {}).items():
        if not isinstance(k, str) or not k or "=" in k or "\0" in k or "\0" in str(v):
            raise CommandError(f"env: bad variable {k!r}")
        if v is None:
            out.pop(k, None)
        else:
            out[k] = v if isinstance(v, str) else str(v).lower() if isinstance(v, bool) else str(v)
    if prepend_path:
        out["PATH"] = f"{prepend_path}:{out.get('PATH', os.defpath)}"
    return out


def _umask(umask: Any) -> int | None:
    if umask in (None, ""):
        return None
    try:
        value = int(str(umask), 8)
    except ValueError:
        raise CommandError(f"umask {umask!r} is not an octal number") from None
    if not 0 < value <= 0o777:
        raise CommandError(f"umask {umask!r} is out of range (1-0777)")
    return value


def _execute(cmd: Any, o: dict, merge_stderr: bool, argv: list[str] | None = None) -> Proc:
    """Run `cmd` with the options `o` (the public function's own arguments)."""
    acct = account(o.get("runas"), o.get("group"))
    argv = argv or _argv(cmd, o.get("python_shell"), o.get("shell"))
    env = user_env(acct, _environment(o.get("env"), bool(o.get("clean_env")), o.get("prepend_path")))
    cwd = o.get("cwd")
    if cwd in (None, ""):
        home = acct.home if acct else os.path.expanduser("~")
        cwd = home if os.path.isabs(home) and os.path.isdir(home) else "/"
    timeout = o.get("timeout")
    if isinstance(timeout, str):
        try:
            timeout = float(timeout)
        except ValueError:
            raise CommandError(f"timeout must be a number of seconds, got {timeout!r}") from None
    stdin = o.get("stdin")
    if stdin is not None and not isinstance(stdin, (str, bytes)):
        stdin = str(stdin)
    return _run_argv(argv, cwd=str(cwd), env=env, stdin=stdin, timeout=timeout or None, acct=acct,
                     umask=_umask(o.get("umask")), output_limit=o.get("output_limit", OUTPUT_LIMIT),
                     merge_stderr=merge_stderr)


def _text(p: Proc, stream: str, o: dict, timeout_note: bool = True) -> str:
    """One stream of `p` as returned: trimmed (rstrip), with the truncation and timeout notes."""
    text = p.stdout if stream == "stdout" else p.stderr
    if o.get("rstrip", True):
        text = text.rstrip()
    notes = [p.note(stream, o.get("output_limit", OUTPUT_LIMIT))]
    if p.timed_out and timeout_note:
        notes.append(f"[rx: timed out after {o.get('timeout')}s: the command and what it started were killed]")
    notes = [n for n in notes if n]
    if notes:
        text = "\n".join([text, *notes]) if text else "\n".join(notes)
    return "" if o.get("hide_output") else text


def _job_retcode(p: Proc, o: dict) -> int:
    if p.timed_out:
        return 1
    ok = o.get("success_retcodes") or [0]
    if not isinstance(ok, (list, tuple)):
        ok = [ok]
    try:
        ok = [int(c) for c in ok]
    except (TypeError, ValueError):
        raise CommandError(f"success_retcodes must be a list of numbers, got {o.get('success_retcodes')!r}") from None
    return 0 if o.get("ignore_retcode") or p.retcode in ok else p.retcode


def _all(p: Proc, o: dict) -> dict:
    return {"pid": p.pid, "retcode": 1 if p.timed_out else p.retcode,
            "stdout": _text(p, "stdout", o, timeout_note=False), "stderr": _text(p, "stderr", o)}


def run(cmd: Any, cwd: str | None = None, stdin: str | None = None, runas: str | None = None,
        group: str | None = None, shell: str | None = None, python_shell: bool | None = None,
        env: dict | None = None, clean_env: bool = False, rstrip: bool = True, umask: str | None = None,
        hide_output: bool = False, timeout: float | None = None, ignore_retcode: bool = False,
        redirect_stderr: bool = True, prepend_path: str | None = None, success_retcodes: list | None = None,
        output_limit: int = OUTPUT_LIMIT) -> Any:
    """Run `cmd` and return its output: stdout and stderr interleaved (stdout only with
    redirect_stderr=False), trailing whitespace trimmed.  The job's retcode is the command's
    (0 with ignore_retcode=True or a status in success_retcodes).

    A string goes through the shell unless python_shell=False (then it is split into words); a
    list never does.  cwd defaults to the home of the user it runs as (runas, group: as root);
    env adds variables (clean_env=True: only those); stdin is fed to the command; timeout
    (seconds) kills it and what it started.  Output past output_limit bytes (8,000,000) is dropped
    with a note; bytes that are not UTF-8 become replacement characters.
    CLI example: rx '*' cmd.run 'df -h' cwd=/tmp runas=nobody
    """
    o = {k: v for k, v in locals().items() if k in _OPTIONS}
    p = _execute(cmd, o, merge_stderr=redirect_stderr)
    return Result(_text(p, "stdout", o), _job_retcode(p, o))


def run_stdout(cmd: Any, cwd: str | None = None, stdin: str | None = None, runas: str | None = None,
               group: str | None = None, shell: str | None = None, python_shell: bool | None = None,
               env: dict | None = None, clean_env: bool = False, rstrip: bool = True, umask: str | None = None,
               hide_output: bool = False, timeout: float | None = None, ignore_retcode: bool = False,
               prepend_path: str | None = None, success_retcodes: list | None = None,
               output_limit: int = OUTPUT_LIMIT) -> Any:
    """Run `cmd` and return only its stdout; the job's retcode is the command's.

    CLI example: rx '*' cmd.run_stdout 'ls /etc'
    """
    o = {k: v for k, v in locals().items() if k in _OPTIONS}
    p = _execute(cmd, o, merge_stderr=False)
    return Result(_text(p, "stdout", o), _job_retcode(p, o))


def run_stderr(cmd: Any, cwd: str | None = None, stdin: str | None = None, runas: str | None = None,
               group: str | None = None, shell: str | None = None, python_shell: bool | None = None,
               env: dict | None = None, clean_env: bool = False, rstrip: bool = True, umask: str | None = None,
               hide_output: bool = False, timeout: float | None = None, ignore_retcode: bool = False,
               prepend_path: str | None = None, success_retcodes: list | None = None,
               output_limit: int = OUTPUT_LIMIT) -> Any:
    """Run `cmd` and return only its stderr; the job's retcode is the command's.

    CLI example: rx '*' cmd.run_stderr 'ls /nonexistent'
    """
    o = {k: v for k, v in locals().items() if k in _OPTIONS}
    p = _execute(cmd, o, merge_stderr=False)
    return Result(_text(p, "stderr", o), _job_retcode(p, o))


def run_all(cmd: Any, cwd: str | None = None, stdin: str | None = None, runas: str | None = None,
            group: str | None = None, shell: str | None = None, python_shell: bool | None = None,
            env: dict | None = None, clean_env: bool = False, rstrip: bool = True, umask: str | None = None,
            hide_output: bool = False, timeout: float | None = None, ignore_retcode: bool = False,
            redirect_stderr: bool = False, prepend_path: str | None = None, success_retcodes: list | None = None,
            output_limit: int = OUTPUT_LIMIT) -> Any:
    """Run `cmd` and return {pid, retcode, stdout, stderr}; the job's retcode is the command's.

    CLI example: rx '*' cmd.run_all 'ls /nonexistent'
    """
    o = {k: v for k, v in locals().items() if k in _OPTIONS}
    p = _execute(cmd, o, merge_stderr=redirect_stderr)
    return Result(_all(p, o), _job_retcode(p, o))


def retcode(cmd: Any, cwd: str | None = None, stdin: str | None = None, runas: str | None = None,
            group: str | None = None, shell: str | None = None, python_shell: bool | None = None,
            env: dict | None = None, clean_env: bool = False, umask: str | None = None,
            timeout: float | None = None, ignore_retcode: bool = False, prepend_path: str | None = None,
            success_retcodes: list | None = None) -> Any:
    """Run `cmd` and return only its exit status (the output is discarded).  As in Salt, the job's
    retcode is that status too, unless ignore_retcode=True.

    CLI example: rx '*' cmd.retcode 'test -d /srv'
    """
    o = {**{k: v for k, v in locals().items() if k in _OPTIONS}, "output_limit": 0}
    p = _execute(cmd, o, merge_stderr=True)
    return Result(1 if p.timed_out else p.retcode, _job_retcode(p, o))


def shell(cmd: str, cwd: str | None = None, stdin: str | None = None, runas: str | None = None,
          group: str | None = None, shell: str | None = None, env: dict | None = None, clean_env: bool = False,
          rstrip: bool = True, umask: str | None = None, hide_output: bool = False, timeout: float | None = None,
          ignore_retcode: bool = False, prepend_path: str | None = None, success_retcodes: list | None = None,
          output_limit: int = OUTPUT_LIMIT) -> Any:
    """Like cmd.run, always through the shell (pipes, redirections, globs): return the output.

    CLI example: rx '*' cmd.shell 'ps aux | grep [s]shd | wc -l'
    """
    o = {**{k: v for k, v in locals().items() if k in _OPTIONS}, "python_shell": True}
    if isinstance(cmd, (list, tuple)):
        cmd = " ".join(shlex.quote(str(a)) for a in cmd)
    p = _execute(cmd, o, merge_stderr=True)
    return Result(_text(p, "stdout", o), _job_retcode(p, o))


def script(ctx: ExecContext, source: str, args: str | list | None = None, cwd: str | None = None,
           stdin: str | None = None, runas: str | None = None, group: str | None = None, shell: str | None = None,
           python_shell: bool | None = None, env: dict | None = None, umask: str | None = None,
           timeout: float | None = None, ignore_retcode: bool = False, success_retcodes: list | None = None,
           output_limit: int = OUTPUT_LIMIT, saltenv: str | None = None) -> Any:
    """Copy the script `source` to a private temporary directory, run it there with `args`, and
    return {pid, retcode, stdout, stderr}; the job's retcode is the script's.

    `source` is a file of the master's file server (`salt://path` or `rx://path`, `saltenv` or
    `?saltenv=`; fetched into the minion's file cache) or an absolute path on the minion.  A script
    without a `#!` line runs in the shell.  `args` is
    a string (split like a shell would; with python_shell=True given to the shell as written) or a
    list.  cwd defaults to the temporary directory.
    CLI example: rx '*' cmd.script /srv/scripts/check.sh args='-v --fast'
    """
    o = {k: v for k, v in locals().items() if k in _OPTIONS}
    if not isinstance(source, str) or not source:
        raise CommandError("source must be the script's path")
    if "://" in source:
        scheme = source.split("://", 1)[0]
        if scheme not in ("salt", "rx"):
            raise CommandError(f"cmd.script {source}: {scheme}:// sources are not supported; give salt://, rx:// "
                               "or an absolute path on the minion")
        from rx.modules.cp import cache_file
        source = cache_file(ctx, source, saltenv=saltenv)
    if "\0" in source or not os.path.isabs(source):
        raise CommandError(f"source {source!r} must be salt://, rx:// or an absolute path on the minion")
    import shutil
    import tempfile
    acct = account(runas, group)
    workdir = tempfile.mkdtemp(prefix="rx-script-")
    try:
        path = os.path.join(workdir, os.path.basename(source) or "script")
        _copy_script(source, path)
        if acct is not None:
            os.chown(workdir, acct.uid, acct.gid)
            os.chown(path, acct.uid, acct.gid)
        o["cwd"] = cwd or workdir
        p = _execute(None, o, merge_stderr=False, argv=_script_argv(path, args, python_shell, shell))
        return Result(_all(p, o), _job_retcode(p, o))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _copy_script(source: str, path: str) -> None:
    try:
        size = os.path.getsize(source)
        if not os.path.isfile(source):
            raise CommandError(f"source {source!r} is not a regular file")
        if size > _SCRIPT_MAX_BYTES:
            raise CommandError(f"source {source!r} is {size} bytes, over the {_SCRIPT_MAX_BYTES}-byte limit")
        import shutil
        shutil.copyfile(source, path)
    except OSError as exc:
        raise CommandError(f"cannot read the script {source!r}: {exc.strerror}") from None
    os.chmod(path, 0o700)


def _script_argv(path: str, args: Any, python_shell: Any, shell: Any) -> list[str]:
    """Run the script itself when it starts with `#!`, else through the shell (as a shell would)."""
    with open(path, "rb") as f:
        prefix = [path] if f.read(2) == b"#!" else [_shell_path(shell), path]
    if python_shell and isinstance(args, str) and args:  # the shell reads args as written
        return [_shell_path(shell), "-c", " ".join([*map(shlex.quote, prefix), args])]
    if isinstance(args, (list, tuple)):
        return [*prefix, *map(_word, args)]
    try:
        return [*prefix, *shlex.split(str(args or ""))]
    except ValueError as exc:
        raise CommandError(f"cannot split args {args!r}: {exc}") from None


def which(cmd: str) -> str | None:
    """Return the full path of the executable `cmd` found on PATH, or None.

    CLI example: rx '*' cmd.which cat
    """
    if not isinstance(cmd, str) or not cmd or "\0" in cmd:
        raise CommandError(f"cmd must be a program name, got {cmd!r}")
    import shutil
    return shutil.which(cmd)


def has_exec(cmd: str) -> bool:
    """Return True if the executable `cmd` is on PATH (or is an executable path).

    CLI example: rx '*' cmd.has_exec cat
    """
    return which(cmd) is not None
