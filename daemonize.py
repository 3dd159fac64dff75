"""Shared daemon plumbing: pidfiles, detaching, one-line fatal errors."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Callable, NoReturn, TypeVar

from rx import __version__
from rx.config import LOG_LEVELS, ConfigError, MasterConfig, MinionConfig
from rx.configdocs import config_yaml
from rx.logsetup import setup_logging
from rx.pathsafe import EXIT_UNSAFE, UnsafePath

T = TypeVar("T")

EXIT_USAGE = 2


def fatal(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print a one-line error (no traceback) and exit."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


def write_pidfile(path: str) -> None:
    """Write our pid (in place, so a file handed to the daemon's user stays writable after a switch)."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(fd, "w") as f:
        f.write(f"{os.getpid()}\n")


def remove_pidfile(path: str) -> None:
    try:
        with open(path) as f:
            if f.read().strip() != str(os.getpid()):
                return
        os.unlink(path)
    except (FileNotFoundError, ValueError):
        pass
    except PermissionError:  # after switching user the pidfile's directory may not be ours: empty it instead
        with open(path, "w"):
            pass


def switch_user(user: str, paths: list[str], files: list[str]) -> None:
    """Run as `user` from here on, after handing it the daemon's directories and files.

    Does nothing when `user` is empty or already the current user; raises
    PermissionError (with a message naming the setting) when not root.
    """
    if not user:
        return
    import pwd
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        raise LookupError(f"user: no such user {user!r}") from None
    if os.geteuid() == pw.pw_uid:
        return
    if os.geteuid() != 0:
        raise PermissionError(f"user: {user!r} is set, but only root can switch to it (running as uid {os.geteuid()})")
    for top in paths:
        for root, dirs, names in os.walk(top):
            for name in [root, *(os.path.join(root, n) for n in dirs + names)]:
                os.lchown(name, pw.pw_uid, pw.pw_gid)
    for name in files:
        if name and os.path.exists(name):
            os.chown(name, pw.pw_uid, pw.pw_gid)
    os.initgroups(user, pw.pw_gid)
    os.setgid(pw.pw_gid)
    os.setuid(pw.pw_uid)


def running_pid(path: str) -> int | None:
    """The pid in `path` if that process is alive, else None."""
    try:
        with open(path) as f:
            pid = int(f.read().strip())
        os.kill(pid, 0)
        return pid
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None
    except PermissionError:
        return pid


def detach() -> None:
    """Double-fork into the background with stdio on /dev/null."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)


def daemon_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """The options every rx daemon takes."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("-c", "--config-dir", help="config directory (default: $RX_CONFIG_DIR or /etc/rx)")
    p.add_argument("-d", "--daemon", action="store_true", help="run in the background (log to log_file)")
    p.add_argument("-l", "--log-level", choices=LOG_LEVELS)
    p.add_argument("--pid-file", help="pidfile path (default: pidfile setting)")
    p.add_argument("--print-config", action="store_true",
                   help="print the effective settings as YAML (after -c, -l, --pid-file and the other options) and exit")
    p.add_argument("--version", action="version", version=f"{prog} {__version__}")
    return p


def overrides(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    """Config settings given on the command line (only those actually given)."""
    pairs = {"log_level": args.log_level, "pidfile": args.pid_file, **{n: getattr(args, n) for n in names}}
    return {k: v for k, v in pairs.items() if v}


def print_config_if_asked(args: argparse.Namespace, cfg: MasterConfig | MinionConfig) -> None:
    """`--print-config`: print the settings the daemon would run with, then exit 0 before anything starts."""
    if args.print_config:
        sys.stdout.write(config_yaml(cfg))
        sys.exit(0)


def launch(prog: str, args: argparse.Namespace, cfg: Any, prepare: Callable[[], T], own_dirs: list[str]) -> T:
    """Shared start-up of a daemon: logging, one instance per pidfile, host checks (`prepare`, whose
    ConfigError is a one-line exit 2, its UnsafePath exit 77), detaching, the pidfile, and switching to `cfg.user`."""
    try:
        setup_logging(cfg.log_level, cfg.log_file if args.daemon else "", to_stderr=not args.daemon)
        pid = running_pid(cfg.pidfile)
        if pid is not None and pid != os.getpid():
            raise ConfigError(f"pidfile: another {prog} (pid {pid}) is running with {cfg.pidfile}", key="pidfile")
        prepared = prepare()
    except UnsafePath as exc:
        fatal(f"refusing to start: {exc}", EXIT_UNSAFE)
    except ConfigError as exc:
        fatal(str(exc))
    if args.daemon:
        detach()
        setup_logging(cfg.log_level, cfg.log_file, to_stderr=False)
    try:
        write_pidfile(cfg.pidfile)
        switch_user(cfg.user, own_dirs, [cfg.pidfile, cfg.log_file])
    except (LookupError, OSError) as exc:
        remove_pidfile(cfg.pidfile)
        fatal(str(exc))
    return prepared
