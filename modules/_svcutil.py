"""What the service back ends (systemd_service, openrc_service, sysv_service) share: service names, Salt's
glob form of `status`, `sig` (find the service by its process), init scripts and their LSB headers.  Not a
module users can call (not in MODULES)."""

from __future__ import annotations

import fnmatch
import os
import re
from typing import Any, Callable, Iterable

from rx.modules import CommandError, ExecContext
from rx.modules._syscmd import check_name, run

DEFAULT_INIT_DIR = "/etc/init.d"
NOT_SCRIPTS = {"README", "skeleton", "rc", "rcS", "rc.local", "functions", "functions.sh", "halt", "reboot",
               "single", "killprocs", "sendsigs"}
SERVICE_TIMEOUT = 300.0
PLAIN_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
             "TERM": "dumb"}
"""the environment init scripts get, as `service` gives it: nothing of the minion's own"""


def is_glob(name: str) -> bool:
    return any(c in name for c in "*?[")


def check_pattern(name: Any) -> str:
    """A service name or a glob of names (Salt's `service.status 'ssh*'`)."""
    if isinstance(name, str) and is_glob(name) and re.fullmatch(r"[A-Za-z0-9_.+@:~*?\[\]!-]{1,255}", name) \
            and not name.startswith("-"):
        return name
    return check_name(name, "service")


def status_of(name: str, sig: str | None, all_names: Callable[[], Iterable[str]],
              one: Callable[[str], bool]) -> Any:
    """Salt's `status`: with `sig`, whether a process whose command line matches it runs; with a glob,
    {service: running} for each matching service; else whether `name` runs."""
    name = check_pattern(name)
    if sig:
        return by_signature(sig)
    if is_glob(name):
        return {n: one(n) for n in sorted(fnmatch.filter(all_names(), name))}
    return one(name)


def by_signature(sig: str) -> bool:
    """True if a process whose full command line matches the regular expression `sig` runs (pgrep -f)."""
    if not isinstance(sig, str) or not sig or "\0" in sig:
        raise CommandError(f"sig must be a non-empty pattern, got {sig!r}")
    return run(["pgrep", "-f", "--", sig], 30).returncode == 0


def init_dir(ctx: ExecContext) -> str:
    """The init-script directory: the minion's `service_init_dir` (default /etc/init.d)."""
    return getattr(ctx.config, "service_init_dir", None) or DEFAULT_INIT_DIR


def scripts(directory: str) -> list[str]:
    """The names of the executable init scripts in `directory`, sorted."""
    try:
        entries = os.listdir(directory)
    except OSError:
        return []
    return sorted(n for n in entries
                  if n not in NOT_SCRIPTS and not n.startswith(".") and ".dpkg-" not in n and not n.endswith("~")
                  and os.path.isfile(os.path.join(directory, n)) and os.access(os.path.join(directory, n), os.X_OK))


def script(ctx: ExecContext, name: str) -> str:
    """The path of init script `name`; CommandError if there is none."""
    path = os.path.join(init_dir(ctx), check_name(name, "service"))
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise CommandError(f"service {name!r} is not available: no executable init script {path}")
    return path


def action_result(what: str, p: Any) -> bool:
    """True if the service tool succeeded; CommandError carrying its output if not."""
    if p.returncode != 0:
        said = " / ".join(ln.strip() for ln in p.stdout.splitlines()[-6:] if ln.strip()) or "no output"
        raise CommandError(f"{what} failed (exit {p.returncode}): {said}")
    return True


def lsb_header(path: str) -> dict[str, str]:
    """The LSB `### BEGIN INIT INFO` block of an init script: {'Provides': ..., 'Default-Start': ...}."""
    out: dict[str, str] = {}
    inside = False
    try:
        with open(path, errors="replace") as f:
            for line in f:
                if line.startswith("### BEGIN INIT INFO"):
                    inside = True
                elif line.startswith("### END INIT INFO"):
                    break
                elif inside and line.startswith("#") and ":" in line:
                    key, _, value = line[1:].partition(":")
                    out[key.strip()] = value.strip()
    except OSError:
        pass
    return out
