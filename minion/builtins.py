"""Functions that run in the minion process itself, because they act on its state (the table of
running jobs, the grains, the module table).  Each takes the minion (`host`) first; the registry
binds it, so users call them like any module function.  They are the built-ins of
`rx.minion.registry`; `saltutil.*` reaches the `rxutil.*` ones (see `rx.modules.ALIASES`)."""

from __future__ import annotations

import fnmatch
import signal
from typing import Any, Callable, Protocol

from rx.modules import CommandError


class Jobs(Protocol):
    running: dict[str, Any]

    def kill(self, jid: str, sig: int = signal.SIGTERM, why: str = "") -> bool: ...


class Host(Protocol):
    """What the built-ins act on: the minion (rx.minion.core.Minion)."""

    executor: Jobs
    pillar: Any
    """the minion's pillar holder (rx.minion.pillar): `.data` is the last good pillar, None before the first"""

    async def refresh_grains(self) -> dict: ...

    async def refresh_pillar(self) -> str: ...

    def refresh_modules(self) -> None: ...

    async def sync_files(self, kind: str, saltenv: str) -> Any: ...


# ---------------------------------------------------------------- jobs.* (rx's own; the client's probes)

async def jobs_running(host: Host) -> list:
    """Return the jobs running on this minion: jid, fun, pid, start time.

    CLI example: rx '*' jobs.running
    """
    return [j.info() for j in host.executor.running.values()]


async def jobs_find(host: Host, jid: str = "") -> dict:
    """Return the running job with this jid ({} if it is not running).

    CLI example: rx '*' jobs.find 20261122051020123456
    """
    found = host.executor.running.get(str(jid))
    return found.info() if found else {}


async def jobs_kill(host: Host, jid: str = "") -> bool:
    """Send SIGTERM to the job with this jid (and its process group); True if it was running.

    CLI example: rx '*' jobs.kill 20261122051020123456
    """
    return host.executor.kill(str(jid), signal.SIGTERM, "jobs.kill")


async def grains_refresh(host: Host) -> dict:
    """Recompute the grains (core facts and the minion config's static grains), send them to the
    master's grains cache, for targeting, and return them.

    CLI example: rx '*' grains.refresh
    """
    return await host.refresh_grains()


# ---------------------------------------------------------------- rxutil.* (Salt's saltutil.*)

async def running(host: Host) -> list:
    """Return the data of each job running on this minion, as Salt's saltutil.running does:
    a list of {arg, fun, jid, pid, ret, tgt, tgt_type, user}.

    CLI example: rx '*' rxutil.running
    """
    return [j.job_data() for j in host.executor.running.values()]


async def find_job(host: Host, jid: str) -> dict:
    """Return the data of the running job `jid` ({arg, fun, jid, pid, ret, tgt, tgt_type, user}),
    or {} when it is not running (it ended, or never ran here).

    CLI example: rx '*' rxutil.find_job 20261122051020123456
    """
    found = host.executor.running.get(str(jid))
    return found.job_data() if found else {}


async def is_running(host: Host, fun: str) -> list:
    """Return the data of the running jobs whose function matches `fun` (a glob).

    CLI example: rx '*' rxutil.is_running 'cmd.*'
    """
    return [j.job_data() for j in host.executor.running.values()
            if any(fnmatch.fnmatchcase(f, str(fun)) for f in _funs(j.fun))]


async def signal_job(host: Host, jid: str, sig: Any) -> str:
    """Send signal `sig` (a number or a name: 15, TERM, SIGTERM) to the job `jid` and its process
    group.  Returns "Signal <n> sent to job <jid> at pid <pid>", or "" when the job is not running.

    CLI example: rx '*' rxutil.signal_job 20261122051020123456 15
    """
    return _signal(host, str(jid), _signum(sig), "rxutil.signal_job")


async def term_job(host: Host, jid: str) -> str:
    """Send SIGTERM to the job `jid` (see signal_job for the return).

    CLI example: rx '*' rxutil.term_job 20261122051020123456
    """
    return _signal(host, str(jid), signal.SIGTERM, "rxutil.term_job")


async def kill_job(host: Host, jid: str) -> str:
    """Send SIGKILL to the job `jid` (see signal_job for the return); its return then says it was killed.

    CLI example: rx '*' rxutil.kill_job 20261122051020123456
    """
    return _signal(host, str(jid), signal.SIGKILL, "rxutil.kill_job")


async def term_all_jobs(host: Host) -> list:
    """Send SIGTERM to every running job; a list of signal_job's returns.

    CLI example: rx '*' rxutil.term_all_jobs
    """
    return [_signal(host, jid, signal.SIGTERM, "rxutil.term_all_jobs") for jid in list(host.executor.running)]


async def kill_all_jobs(host: Host) -> list:
    """Send SIGKILL to every running job; a list of signal_job's returns.

    CLI example: rx '*' rxutil.kill_all_jobs
    """
    return [_signal(host, jid, signal.SIGKILL, "rxutil.kill_all_jobs") for jid in list(host.executor.running)]


async def refresh_grains(host: Host, refresh_pillar: bool = True) -> bool:
    """Recompute the grains, send them to the master's grains cache, look again at which modules are
    available (their `__virtual__` may depend on grains) and, with `refresh_pillar`, fetch the pillar
    again (compiled with the new grains; if it does not compile, the minion logs why and keeps the last
    good one).  Returns True.

    CLI example: rx '*' rxutil.refresh_grains
    """
    await host.refresh_grains()
    host.refresh_modules()
    if refresh_pillar:
        await host.refresh_pillar()
    return True


async def refresh_modules(host: Host, **kwargs: Any) -> bool:
    """Look again for modules (module_dirs, synced modules, installed entry points) and forget which
    were available, so the next call asks their `__virtual__` again.  Returns True.

    Differs from Salt: done before returning; Salt's `async=` is accepted and ignored.
    CLI example: rx '*' rxutil.refresh_modules
    """
    unknown = sorted(set(kwargs) - {"async"})
    if unknown:
        raise CommandError(f"unexpected keyword argument(s): {', '.join(unknown)}")
    host.refresh_modules()
    return True


async def reload_modules(host: Host) -> bool:
    """Tell the minion to look again for its execution modules (as rxutil.refresh_modules).  Returns True.

    CLI example: rx '*' sys.reload_modules
    """
    host.refresh_modules()
    return True


async def sync_modules(host: Host, saltenv: str = "", refresh: bool = True) -> list:
    """Fetch the custom modules (`_modules` in the master's file roots) into `<cachedir>/extmods/modules`,
    checking each file's sha256 and removing those the master no longer has; the next job sees them.
    Returns what changed, as Salt (`['modules.mymod']`).  `refresh` is accepted for Salt's sake: rx always
    looks for the module files again after a sync that changed something.

    CLI example: rx '*' rxutil.sync_modules
    """
    return await host.sync_files("modules", saltenv)


async def sync_grains(host: Host, saltenv: str = "", refresh: bool = True) -> list:
    """Fetch the custom grain modules (`_grains`) into `<cachedir>/extmods/grains` and refresh the grains
    (sent to the master's cache) when something changed.  Returns what changed (`['grains.rack']`).

    CLI example: rx '*' rxutil.sync_grains
    """
    return await host.sync_files("grains", saltenv)


async def sync_all(host: Host, saltenv: str = "", refresh: bool = True) -> dict:
    """Fetch every kind of custom module from the master: `{"modules": [...], "grains": [...]}`.

    CLI example: rx '*' rxutil.sync_all
    """
    return await host.sync_files("all", saltenv)


async def refresh_pillar(host: Host, wait: bool = False, timeout: float = 30, clean_cache: bool = True) -> bool:
    """Fetch this minion's pillar from the master now (the minion keeps it in memory) and return True.  If
    the master cannot compile it, fail with the file and line, and keep the last good pillar.

    Differs from Salt: always waits for the master's answer; `wait`, `timeout` and `clean_cache` are accepted.
    CLI example: rx '*' rxutil.refresh_pillar
    """
    why = await host.refresh_pillar()
    if why:
        kept = "the last one is kept" if host.pillar.data is not None else "this minion has none"
        raise CommandError(f"the pillar was not refreshed ({kept}): {why}")
    return True


BUILTINS: dict[str, Callable[..., Any]] = {
    "jobs.running": jobs_running, "jobs.find": jobs_find, "jobs.kill": jobs_kill,
    "grains.refresh": grains_refresh,
    "rxutil.running": running, "rxutil.find_job": find_job, "rxutil.is_running": is_running,
    "rxutil.signal_job": signal_job, "rxutil.term_job": term_job, "rxutil.kill_job": kill_job,
    "rxutil.term_all_jobs": term_all_jobs, "rxutil.kill_all_jobs": kill_all_jobs,
    "rxutil.refresh_grains": refresh_grains, "rxutil.refresh_modules": refresh_modules,
    "rxutil.sync_modules": sync_modules, "rxutil.sync_grains": sync_grains, "rxutil.sync_all": sync_all,
    "rxutil.refresh_pillar": refresh_pillar,
    "sys.reload_modules": reload_modules,
}
"""Each built-in's name and function (its first parameter, the minion, is bound by the registry)."""
BUILTIN_MODULES = {
    "jobs": "The minion's table of running jobs (rx's own; `rx` uses `jobs.find` to ask whether a late minion "
            "still runs a job).",
    "rxutil": "The minion's jobs, grains and modules, as Salt's `saltutil` (which is an alias of it).",
}
"""What the modules made only of built-ins are for (docs/modules.md)."""


def _funs(fun: Any) -> list[str]:
    return [f for f in fun if isinstance(f, str)] if isinstance(fun, list) else [str(fun)]


def _signum(sig: Any) -> int:
    text = str(sig).strip().upper()
    try:
        num = int(text) if text.isdigit() else int(getattr(signal.Signals, text if text.startswith("SIG")
                                                           else "SIG" + text))
        return int(signal.Signals(num))
    except (AttributeError, ValueError):
        raise CommandError(f"{sig!r} is not a signal: give a number (15) or a name (TERM, SIGTERM)") from None


def _signal(host: Host, jid: str, sig: int, why: str) -> str:
    job = host.executor.running.get(jid)
    if job is None or not host.executor.kill(jid, sig, why):
        return ""
    return f"Signal {sig} sent to job {jid} at pid {job.pid}"
