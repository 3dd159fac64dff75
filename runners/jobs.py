"""Jobs in the master's job store (`rx-run jobs.*`, Salt's names, arguments and shapes): through the job
service, so they work whether or not the master runs, whatever the store backend; `jobs.active` asks the
minions what they are running, through the running master."""

from __future__ import annotations

import datetime
from typing import Any

from rx.master.services import JobQuery, UnknownJob
from rx.master.services.jobs import job_info
from rx.runners import BadRequest, Result, RunnerContext
from rx.transport.ids import is_jid

__all__ = ["active", "exit_success", "last_run", "list_job", "list_jobs", "lookup_jid", "print_job"]

TIME_FORMATS = ("%Y, %b %d %H:%M:%S.%f", "%Y, %b %d %H:%M:%S", "%Y, %b %d %H:%M", "%Y, %b %d")


def _parse_time(value: Any, name: str) -> float | None:
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
        raise BadRequest(f"{name}: {text!r} is not a time (e.g. '2024-01-02 03:04:05' or '2024, Jan 02 03:04', UTC)")
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
        raise BadRequest(f"{name}: give a glob or a list of globs")
    return out


def _jid(jid: Any) -> str:
    jid = str(jid)
    if not is_jid(jid):
        raise BadRequest(f"{jid[:64]!r} is not a job id (20 digits, as `rx` prints them)")
    return jid


def _query(function: Any = None, target: Any = None, user: Any = None, start_time: Any = None,
           end_time: Any = None, limit: Any = 0, names: tuple[str, str, str] = ("function", "target", "user")) -> JobQuery:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise BadRequest(f"limit: {limit!r} is not a whole number >= 0")
    return JobQuery(functions=_globs(function, names[0]), targets=_globs(target, names[1]),
                    users=_globs(user, names[2]), start=_parse_time(start_time, "start_time"),
                    end=_parse_time(end_time, "end_time"), limit=limit)


async def list_jobs(ctx: RunnerContext, search_function: Any = None, search_target: Any = None,
                    search_user: Any = None, start_time: Any = None, end_time: Any = None, limit: Any = 0) -> Any:
    """The jobs kept, newest first: `{jid: {Function, Arguments, Target, Target-type, User, StartTime, Minions}}`.
    Filters (all must hold): search_function / search_target (globs, a list or comma-separated),
    search_user (names), start_time / end_time (the job started then or after / then or before), limit.

    CLI example: rx-run jobs.list_jobs search_function='pkg.*' start_time='2026-12-01 08:00'
    """
    query = _query(search_function, search_target, search_user, start_time, end_time, limit,
                   ("search_function", "search_target", "search_user"))
    return await ctx.services().jobs.list_jobs(query)


async def list_job(ctx: RunnerContext, jid: Any) -> Any:
    """One job: `{jid, Function, Arguments, Target, Target-type, User, StartTime, Minions, Result}`, Result being
    `{id: {return, retcode, success, start_time, end_time}}` of the minions that returned (Salt's shape; rx-api's
    `GET /jobs/<jid>` is built on it).

    CLI example: rx-run jobs.list_job 20261122051020123456
    """
    jid = _jid(jid)
    return {"jid": jid, **(await ctx.services().jobs.print_job(jid))[jid]}


async def lookup_jid(ctx: RunnerContext, jid: Any, returned: bool = True, missing: bool = False) -> Any:
    """`{id: return}` of a job; with missing=True also each expected minion that did not return.

    CLI example: rx-run jobs.lookup_jid 20261122051020123456 missing=True
    """
    return await ctx.services().jobs.lookup_jid(_jid(jid), returned=bool(returned), missing=bool(missing))


async def print_job(ctx: RunnerContext, jid: Any) -> Any:
    """A job's fields and its full returns (`Result`).

    CLI example: rx-run jobs.print_job 20261122051020123456
    """
    return await ctx.services().jobs.print_job(_jid(jid))


async def exit_success(ctx: RunnerContext, jid: Any) -> Any:
    """`{id: True/False}`: whether each minion returned and succeeded; exits 1 if one did not.

    CLI example: rx-run jobs.exit_success 20261122051020123456
    """
    data = await ctx.services().jobs.exit_success(_jid(jid))
    return Result(data, 0 if all(data.values()) else 1)


async def last_run(ctx: RunnerContext, function: Any = None, target: Any = None, user: Any = None) -> Any:
    """print_job of the newest job (of `function`, `target`, `user` when given: globs); False (exit 1) if none.

    CLI example: rx-run jobs.last_run function='state.*'
    """
    found = await ctx.services().jobs.last_run(_query(function, target, user))
    return Result(False, 1) if found is None else found


async def active(ctx: RunnerContext, timeout: Any = None) -> Any:
    """The jobs running now, asked of every minion (`jobs.running`): `{jid: {...job fields, Running:
    [{id: pid}], Returned: [ids]}}`.

    CLI example: rx-run jobs.active timeout=5
    """
    timeout = ctx.timeout if timeout is None else timeout
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
        raise BadRequest(f"timeout: {timeout!r} is not a number of seconds > 0")
    running = await ctx.client().cmd("*", "jobs.running", timeout=timeout)
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
            entry["Returned"] = sorted(await ctx.services().jobs.returns(jid))
        except UnknownJob:
            pass
    return out


async def _active_entry(ctx: RunnerContext, jid: str, running: dict) -> dict:
    try:
        info = job_info(await ctx.services().jobs.job(jid))
    except UnknownJob:  # purged meanwhile, or run by rx-call: what the minion says of it
        info = {"Function": running.get("fun"), "Arguments": [], "Target": "", "Target-type": "", "User": "",
                "StartTime": "", "Minions": []}
    return {**info, "Running": [], "Returned": []}
