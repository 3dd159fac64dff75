"""The `jobs` runner (`rx-run jobs.*`, Salt's names, arguments and shapes): the job store through the job
service, and `jobs.active`, which asks the minions what they are running.

Each runner is `async def name(ctx, *args, **kwargs) -> Outcome`; `RUNNERS` maps `jobs.<name>` to it.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from rx.client.results import EXIT_FAILED, EXIT_OK
from rx.master.services import JobQuery, Services, UnknownJob
from rx.master.services.jobs import job_info
from rx.transport.ids import is_jid

__all__ = ["RUNNERS", "RunnerContext", "Outcome", "RunnerUsage", "parse_time"]


@dataclass
class RunnerContext:
    """What a runner may use: the master's services and config."""

    services: Services
    cfg: Any


@dataclass
class Outcome:
    data: Any
    exit_code: int = EXIT_OK


class RunnerUsage(ValueError):
    """Bad arguments: rx-run says so and exits 2."""


TIME_FORMATS = ("%Y, %b %d %H:%M:%S.%f", "%Y, %b %d %H:%M:%S", "%Y, %b %d %H:%M", "%Y, %b %d")


def parse_time(value: Any, name: str) -> float | None:
    """An epoch time from a number, ISO 8601 (`2024-01-02 03:04[:05]`, UTC unless it names a zone) or Salt's
    StartTime form (`2024, Jan 02 03:04:05`, UTC)."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, (datetime.datetime, datetime.date)):  # YAML made it one already
        value = value.isoformat() if isinstance(value, datetime.datetime) else f"{value.isoformat()}T00:00:00"
    text = str(value).strip()
    parsed = None
    try:
        parsed = datetime.datetime.fromisoformat(text)
    except ValueError:
        for fmt in TIME_FORMATS:
            try:
                parsed = datetime.datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
    if parsed is None:
        raise RunnerUsage(f"{name}: {text!r} is not a time (e.g. '2024-01-02 03:04:05' or '2024, Jan 02 03:04', UTC)")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return parsed.timestamp()


def _globs(value: Any, name: str) -> tuple[str, ...]:
    """Salt's split_input: a list, or a comma-separated string."""
    if value is None or value == "":
        return ()
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    out = tuple(str(v).strip() for v in items if str(v).strip())
    if not out:
        raise RunnerUsage(f"{name}: give a glob or a list of globs")
    return out


def _jid(jid: Any) -> str:
    jid = str(jid)
    if not is_jid(jid):
        raise RunnerUsage(f"{jid[:64]!r} is not a job id (20 digits, as `rx` prints them)")
    return jid


def _query(function: Any = None, target: Any = None, user: Any = None, start_time: Any = None,
           end_time: Any = None, limit: Any = 0, names: tuple[str, str, str] = ("function", "target", "user")) -> JobQuery:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise RunnerUsage(f"limit: {limit!r} is not a whole number >= 0")
    return JobQuery(functions=_globs(function, names[0]), targets=_globs(target, names[1]),
                    users=_globs(user, names[2]), start=parse_time(start_time, "start_time"),
                    end=parse_time(end_time, "end_time"), limit=limit)


async def list_jobs(ctx: RunnerContext, search_function: Any = None, search_target: Any = None,
                    search_user: Any = None, start_time: Any = None, end_time: Any = None, limit: Any = 0) -> Outcome:
    """The jobs kept, newest first: `{jid: {Function, Arguments, Target, Target-type, User, StartTime, Minions}}`.
    Filters (all must hold): search_function / search_target (globs, a list or comma-separated),
    search_user (names), start_time / end_time (the job started then or after / then or before), limit."""
    query = _query(search_function, search_target, search_user, start_time, end_time, limit,
                   ("search_function", "search_target", "search_user"))
    return Outcome(await ctx.services.jobs.list_jobs(query))


async def lookup_jid(ctx: RunnerContext, jid: Any, returned: bool = True, missing: bool = False) -> Outcome:
    """`{id: return}` of a job; with missing=True also each expected minion that did not return."""
    return Outcome(await ctx.services.jobs.lookup_jid(_jid(jid), returned=bool(returned), missing=bool(missing)))


async def print_job(ctx: RunnerContext, jid: Any) -> Outcome:
    """A job's fields and its full returns (`Result`)."""
    return Outcome(await ctx.services.jobs.print_job(_jid(jid)))


async def exit_success(ctx: RunnerContext, jid: Any) -> Outcome:
    """`{id: True/False}`: whether each minion returned and succeeded; exits 1 if one did not."""
    data = await ctx.services.jobs.exit_success(_jid(jid))
    return Outcome(data, EXIT_OK if all(data.values()) else EXIT_FAILED)


async def last_run(ctx: RunnerContext, function: Any = None, target: Any = None, user: Any = None) -> Outcome:
    """print_job of the newest job (of `function`, `target`, `user` when given: globs); False if none."""
    found = await ctx.services.jobs.last_run(_query(function, target, user))
    return Outcome(False if found is None else found, EXIT_OK if found is not None else EXIT_FAILED)


async def active(ctx: RunnerContext, timeout: Any = None) -> Outcome:
    """The jobs running now, asked of every minion (`jobs.running`): `{jid: {...job fields, Running:
    [{id: pid}], Returned: [ids]}}`."""
    from rx.client.local import AsyncLocalClient
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
        raise RunnerUsage(f"timeout: {timeout!r} is not a number of seconds > 0")
    client = AsyncLocalClient(cfg=ctx.cfg)
    try:
        running = await client.cmd("*", "jobs.running", timeout=timeout)
    finally:
        await client.aclose()
    out: dict[str, dict] = {}
    for minion, jobs in sorted(running.items()):
        for job in jobs if isinstance(jobs, list) else ():
            jid = job.get("jid") if isinstance(job, dict) else None
            if not is_jid(jid):
                continue
            if jid not in out:
                out[jid] = await _active_entry(ctx, jid, job)
            out[jid]["Running"].append({minion: job.get("pid")})
    for jid, entry in out.items():
        try:
            entry["Returned"] = sorted(await ctx.services.jobs.returns(jid))
        except UnknownJob:
            pass
    return Outcome(out)


async def _active_entry(ctx: RunnerContext, jid: str, running: dict) -> dict:
    try:
        info = job_info(await ctx.services.jobs.job(jid))
    except UnknownJob:  # purged meanwhile, or run by rx-call: what the minion says of it
        info = {"Function": running.get("fun"), "Arguments": [], "Target": "", "Target-type": "", "User": "",
                "StartTime": "", "Minions": []}
    return {**info, "Running": [], "Returned": []}


RUNNERS: dict[str, Callable[..., Awaitable[Outcome]]] = {
    "jobs.active": active, "jobs.exit_success": exit_success, "jobs.last_run": last_run,
    "jobs.list_jobs": list_jobs, "jobs.lookup_jid": lookup_jid, "jobs.print_job": print_job,
}

