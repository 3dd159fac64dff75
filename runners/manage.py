"""The fleet's state: which minions answer a ping (up, down, status), which are connected now without
sending them anything (present, alived, joined), and which rx version each runs (versions).

Presence: a minion's daemon holds a connection to the publish port carrying a presence claim made with
its session key (see rx.transport.presence); the publisher counts the claims on live connections.  A
connection that closes (a stopped or killed minion) drops out at once, one whose host stops answering
TCP keepalive probes (a host that vanished) within 40 s.  `present`, `alived` and `joined` are Salt's three names
for that one list, kept so scripts port unchanged; the `not_*` runners are the accepted minions outside
it.  Only minions with accepted keys are listed.
"""

from __future__ import annotations

import glob
import re
from typing import Any

import rx
from rx.client.results import MasterUnreachable
from rx.runners import BadRequest, NeedsConfirmation, RunnerContext

__all__ = ["status", "up", "down", "last_seen", "present", "not_present", "joined", "not_joined", "alived",
           "not_alived", "list_state", "list_not_state", "versions"]

OFFLINE, OLDER, SAME, NEWER, MASTER = "Minion offline", "Minion requires update", "Up to date", \
    "Minion newer than master", "Master"


def _flag(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in ("true", "yes", "1")) or value == 1


def _seconds(value: Any, name: str) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = 0.0
    if not seconds > 0:
        raise BadRequest(f"{name} must be a number of seconds > 0, got {value!r}")
    return seconds


async def _ping(ctx: RunnerContext, fun: str, tgt: Any, tgt_type: str, timeout: Any,
                gather_job_timeout: Any) -> dict[str, dict]:
    """`{id: return}` of `fun` on the target, every expected minion included (the missing ones `failed`)."""
    from rx.client.gather import DEFAULT_GATHER_JOB_TIMEOUT
    wait = _seconds(timeout, "timeout") or ctx.timeout or ctx.cfg.timeout
    gather = _seconds(gather_job_timeout, "gather_job_timeout") or DEFAULT_GATHER_JOB_TIMEOUT
    out: dict[str, dict] = {}
    async for item in ctx.client().cmd_iter(tgt, fun, timeout=wait, tgt_type=tgt_type, expect_minions=True,
                                            gather_job_timeout=gather):
        out.update(item)
    return out


async def status(ctx: RunnerContext, tgt: Any = "*", tgt_type: str = "glob", timeout: Any = None,
                 gather_job_timeout: Any = None) -> dict[str, list[str]]:
    """Ping the targeted minions (test.ping); return `{"up": [...], "down": [...]}`, ids sorted.

    `timeout`: seconds without a new answer before the missing minions are asked whether they still run it
    (default: rx-run -t, else the master's `timeout`).  Only accepted minions are targeted.

    CLI example: rx-run manage.status tgt='web*' timeout=3
    """
    answers = await _ping(ctx, "test.ping", tgt, tgt_type, timeout, gather_job_timeout)
    return {"up": sorted(m for m, r in answers.items() if not r.get("failed")),
            "down": sorted(m for m, r in answers.items() if r.get("failed"))}


async def up(ctx: RunnerContext, tgt: Any = "*", tgt_type: str = "glob", timeout: Any = None,
             gather_job_timeout: Any = None) -> list[str]:
    """Ping the targeted minions; return the ids of those that answered, sorted.

    CLI example: rx-run manage.up timeout=5
    """
    return (await status(ctx, tgt, tgt_type, timeout, gather_job_timeout))["up"]


async def down(ctx: RunnerContext, removekeys: Any = False, tgt: Any = "*", tgt_type: str = "glob",
               timeout: Any = None, gather_job_timeout: Any = None) -> list[str]:
    """Ping the targeted minions; return the ids of those that did not answer, sorted.

    With `removekeys=True` their keys are deleted too (as `rx-key -d` does: the session key rotates, the
    others re-authenticate by themselves).  That needs `-y`/`--yes`: without it nothing is removed, the
    minions that would lose their keys are named and rx-run exits 7.

    CLI example: rx-run manage.down removekeys=True -y
    """
    gone = (await status(ctx, tgt, tgt_type, timeout, gather_job_timeout))["down"]
    if not _flag(removekeys) or not gone:
        return gone
    if not ctx.confirmed:
        listed = ", ".join(gone[:20]) + (f" and {len(gone) - 20} more" if len(gone) > 20 else "")
        raise NeedsConfirmation(f"manage.down removekeys=True would delete the keys of {len(gone)} minion(s) that "
                                f"did not answer: {listed}. Nothing was removed; run it again with -y/--yes to "
                                "remove them")
    keys = ctx.services().keys
    found = [k for mid in gone for k in await keys.candidates("delete", glob.escape(mid)) if k.id == mid]
    await keys.apply("delete", found)
    return gone


def _subset(subset: Any) -> set[str] | None:
    if subset is None:
        return None
    if isinstance(subset, str):
        return {s for s in re.split(r"[,\s]+", subset) if s}
    if isinstance(subset, list):
        return {str(s) for s in subset}
    raise BadRequest(f"subset must be a list of minion ids (or a comma-separated string), got {subset!r}")


async def list_state(ctx: RunnerContext, subset: Any = None, show_ip: Any = False) -> Any:
    """The accepted minions connected to this master now, from live presence (nothing is sent to them),
    sorted; with `show_ip=True`, `{id: address of its connection}` (the latest if it has several).
    `subset`: only these ids (a list, or ids separated by commas).  `present`, `alived`, `joined` and
    `list_state` are Salt's names for this one list.

    CLI example: rx-run manage.present subset='[web1, web2]'
    """
    from rx.master.services import MasterNotRunning
    from rx.master.services.presence import PresenceService
    services = ctx.services()
    try:
        connected = await PresenceService(ctx.cfg.sock_dir).connected()
    except MasterNotRunning as exc:
        raise MasterUnreachable(str(exc)) from None
    accepted = set((await services.keys.listing())["accepted"])
    wanted = _subset(subset)
    ids = sorted(m for m in connected if m in accepted and (wanted is None or m in wanted))
    return {m: connected[m].get("addr", "") for m in ids} if _flag(show_ip) else ids


async def list_not_state(ctx: RunnerContext, subset: Any = None) -> list[str]:
    """The accepted minions not connected to this master now (nothing is sent to them), sorted.  `subset`:
    only these ids.  `not_present`, `not_alived`, `not_joined` and `list_not_state` are Salt's names for
    this one list.

    CLI example: rx-run manage.not_present
    """
    connected = set(await list_state(ctx))
    wanted = _subset(subset)
    accepted = (await ctx.services().keys.listing())["accepted"]
    return sorted(m for m in accepted if m not in connected and (wanted is None or m in wanted))


async def last_seen(ctx: RunnerContext, subset: Any = None) -> dict:
    """When each accepted minion was last connected to this master, from live presence (nothing is sent to
    them): `{id: {"up": true, "since": time it connected, "last_seen": now}}` for the connected ones, `{"up":
    false, "since": null, "last_seen": time it was last connected}` for the others (`last_seen` null: not seen
    since the presence report began).  Times are Unix seconds.  `subset`: only these ids.  rx only: Salt has
    no such runner.

    CLI example: rx-run manage.last_seen subset=web1,web2
    """
    from rx.master.services import MasterNotRunning
    from rx.master.services.presence import PresenceService
    try:
        seen = await PresenceService(ctx.cfg.sock_dir).last_seen()
    except MasterNotRunning as exc:
        raise MasterUnreachable(str(exc)) from None
    accepted = (await ctx.services().keys.listing())["accepted"]
    wanted = _subset(subset)
    never = {"up": False, "since": None, "last_seen": None}
    return {m: seen.get(m, never) for m in sorted(accepted) if wanted is None or m in wanted}


present = joined = alived = list_state
"""Salt has three names for the one presence list, kept so that scripts port unchanged."""
not_present = not_joined = not_alived = list_not_state


def _version(text: Any) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", str(text)))


async def versions(ctx: RunnerContext, tgt: Any = "*", tgt_type: str = "glob", timeout: Any = None,
                   gather_job_timeout: Any = None) -> dict:
    """Ask the targeted minions their rx version (test.version) and sort them against the master's:
    `{"Master": version, "Up to date": {id: version}, "Minion requires update": {...},
    "Minion newer than master": {...}, "Minion offline": {id: false}}` (empty groups left out).

    CLI example: rx-run manage.versions
    """
    master = rx.__version__
    out: dict[str, Any] = {MASTER: master}
    for mid, r in sorted((await _ping(ctx, "test.version", tgt, tgt_type, timeout, gather_job_timeout)).items()):
        if r.get("failed") or r.get("retcode") or not isinstance(r.get("ret"), str):
            out.setdefault(OFFLINE, {})[mid] = False
            continue
        theirs, ours = _version(r["ret"]), _version(master)
        label = SAME if theirs == ours else (OLDER if theirs < ours else NEWER)
        out.setdefault(label, {})[mid] = r["ret"]
    return out
