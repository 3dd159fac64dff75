"""Local-socket commands (root key required): `publish` a job, `preview` a target and `lookup` a
job's stored returns, for the root key's holder or for the user its `auth` names (rx.master.access):
a user's job is allowed or refused by AuthService.authorize_publish against the expanded minions, gets a
jid from the master, its owner as `User`, and is sealed for each of those minions alone; a user sees only
the minions their rights cover in a preview, and only their own jobs in a lookup.  Every request is a
line in the audit log.

The expected minions are the accepted ones the target matches, with the grains cache for
grain targets and the pillar cache for pillar targets; a minion without cached grains (or pillar)
that might match is expected too and reported as `no_grains`.  A job to at most
`private_publish_max` of them (or any job asked `private`) is sealed once per expected minion,
under a key only that minion holds; others go out once, under the shared publish key.  `lookup` is
how a client reads the job store (it never opens the master's files): before it reports a minion
missing, the store is the judge.
"""

from __future__ import annotations

import hmac
import logging
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any

from rx.master.access import Refused, principal_of, record
from rx.master.context import WorkerContext, error, store_log
from rx.master.services.auth import ROOT, NotPermitted, Principal
from rx.master.store import JobExists, JobRecord, ReturnsLost, StoreError, UnknownJob
from rx.targeting import MinionFacts, Target, TargetError, compile_target, expand_nodegroups
from rx.transport.errors import ErrorKind, ProtocolError
from rx.transport.codec import encode
from rx.transport.events import JobNewEvent
from rx.transport.handshake import private_publish_key, request_key
from rx.transport.messages import Job, LookupRequest, PublishRequest
from rx.transport.replies import LookupReply, PreviewReply, PublishReply
from rx.transport.secure import seal_publication
from rx.transport.topics import BROADCAST, bucket

log = logging.getLogger("rx.master.handlers")

TARGET_SECONDS = 3.0
"""Longest the expansion of one target over the accepted minions may take: a regular expression that
backtracks without end (pcre `(.*)*@` on a 40-character id runs for hours) is refused past it, instead of
holding the worker, and so every publish, preview and return it serves.  It stays under the 5 s a client
waits for the master's answer to a publish, so the client hears why; an honest compound target over 50,000
minions' grains takes well under a second."""
LOOKUP_REPLY_BYTES = 8 * 1024 * 1024
"""Returns past this many encoded bytes go to the next `lookup` reply (always one at least: a return is
at most 12 MB, under the 16 MB frame limit)."""


@dataclass(frozen=True)
class Expected:
    tgt: str | list
    tgt_type: str
    minions: list[str]
    no_grains: list[str]


async def expected(ctx: WorkerContext, req: PublishRequest) -> Expected:
    return await match(ctx, req.tgt, req.tgt_type, req.delimiter)


async def match(ctx: WorkerContext, tgt: str | list, tgt_type: str, delimiter: str = ":") -> Expected:
    """Expand nodegroups, then match every accepted minion (with cached grains and pillars when the target
    needs them)."""
    tgt, tgt_type = expand_nodegroups(tgt, tgt_type, ctx.settings.nodegroups)
    target = compile_target(tgt, tgt_type, delimiter=delimiter)
    ids = await ctx.stores.keys.ids("accepted")
    grains = await ctx.stores.grains.get_many(ids) if target.uses_grains else {}
    pillars = await ctx.pillar.cache.get_many(ids) if target.uses_pillar and ctx.pillar is not None else {}
    facts = [MinionFacts(i, grains.get(i), pillars.get(i)) for i in ids]
    minions, no_grains = select_within(target, facts, TARGET_SECONDS)
    return Expected(tgt, tgt_type, minions, no_grains)


class _TooSlow(Exception):
    pass


def _expired(signum: int, frame: Any) -> None:
    raise _TooSlow()


def select_within(target: Target, facts: list[MinionFacts], seconds: float) -> tuple[list[str], list[str]]:
    """`target.select(facts)`, or TargetError once it has run `seconds`: a timer signal interrupts it (Python's
    regular expressions check for signals as they backtrack).  Unbounded outside the main thread (no signals)."""
    if threading.current_thread() is not threading.main_thread():
        return target.select(facts)
    previous = signal.signal(signal.SIGALRM, _expired)
    try:
        try:
            signal.setitimer(signal.ITIMER_REAL, seconds)
            return target.select(facts)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    except _TooSlow:
        signal.signal(signal.SIGALRM, previous)
        raise TargetError(f"the target took more than {seconds:g}s to match the accepted minions (a regular "
                          "expression that backtracks, such as (.*)*x?): refused") from None


def _root_key_ok(ctx: WorkerContext, load: dict) -> bool:
    key = load.get("key")
    return isinstance(key, str) and hmac.compare_digest(key.encode(), ctx.root_key.encode())


async def _principal(ctx: WorkerContext, load: dict, action: str) -> Principal:
    """Who the request is for; Refused for a bad root key or credentials (see rx.master.access)."""
    if not _root_key_ok(ctx, load):
        log.warning("refused a client request: bad or missing root key")
        raise Refused(ErrorKind.PERMISSION, "refused: missing or wrong root key")
    if ctx.auth is None:
        if load.get("auth"):
            raise Refused(ErrorKind.PERMISSION, "this master takes no user credentials")
        return ROOT
    return await principal_of(ctx.auth, load, action)


async def definite(ctx: WorkerContext, tgt: str) -> frozenset[str]:
    """The minions a compound target (an ACL rule's) surely matches: not those only listed for lack of
    cached grains or pillar, and none for a target that no longer compiles."""
    try:
        exp = await match(ctx, tgt, "compound")
    except TargetError:
        return frozenset()
    return frozenset(exp.minions) - frozenset(exp.no_grains)


async def _parse(ctx: WorkerContext, load: dict, action: str) -> tuple[PublishRequest, Expected, Principal] | dict:
    try:
        who = await _principal(ctx, load, action)
        req = PublishRequest.from_wire(load)
        exp = await expected(ctx, req)
    except Refused as exc:
        return exc.reply
    except ProtocolError as exc:
        reply = error(ErrorKind.BAD_REQUEST, str(exc))
    except TargetError as exc:
        reply = error(ErrorKind.BAD_TARGET, str(exc))
    else:
        if ctx.auth is None or who.root:
            return req, exp, who
        try:
            await ctx.auth.authorize_publish(who, req.tgt, req.tgt_type, req.fun, exp.minions, arg=req.arg,
                                             kwarg=req.kwarg, expand=lambda t: definite(ctx, t))
            return req, exp, who
        except NotPermitted as exc:
            if action == "preview":  # a preview shows what the user's rights cover
                shown = await ctx.auth.visible(who, exp.minions, lambda t: definite(ctx, t))
                return req, Expected(exp.tgt, exp.tgt_type, shown, [m for m in exp.no_grains if m in shown]), who
            record(ctx.auth, who, action, "refused", load, reason=str(exc), minions=len(exp.minions))
            return error(ErrorKind.PERMISSION, str(exc))
    if ctx.auth is not None:
        record(ctx.auth, who, action, "refused", load, reason=reply["error"]["message"])
    return reply


async def handle_preview(ctx: WorkerContext, load: dict) -> dict:
    """The minions a target would reach, without publishing anything."""
    parsed = await _parse(ctx, load, "preview")
    if isinstance(parsed, dict):
        return parsed
    _req, exp, who = parsed
    if ctx.auth is not None:
        record(ctx.auth, who, "preview", "allowed", load, minions=len(exp.minions))
    return PreviewReply(exp.minions, exp.no_grains).to_wire()


async def handle_publish(ctx: WorkerContext, load: dict) -> dict:
    parsed = await _parse(ctx, load, "publish")
    if isinstance(parsed, dict):
        return parsed
    req, exp, who = parsed
    jid = req.jid or ctx.jids.next()  # the user socket's relay drops a user's own jid: the master allocates it
    ts = time.time()
    job = Job(jid=jid, fun=req.fun, arg=req.arg, kwarg=req.kwarg, tgt=exp.tgt, tgt_type=exp.tgt_type, ts=ts,
              user=req.user if who.root else who.owner, delimiter=req.delimiter, expires=req.expiry(ts))
    warning = ""
    start = time.perf_counter()
    try:
        await ctx.stores.jobs.create_job(JobRecord(job, exp.minions, exp.no_grains))
    except JobExists:
        return error(ErrorKind.BAD_REQUEST, f"job id {jid} is already in use")
    except (StoreError, OSError) as exc:
        # a full disk never stops a job: it is published, and the client told that its returns wait
        store_log(str(exc))
        warning = (f"the master could not store job {jid}'s record ({exc}); its returns are stored once the "
                   "job cache can be written again (see the master's log)")
    finally:
        ctx.metrics.store_writes["create_job"].observe(time.perf_counter() - start)
    await ctx.fire(JobNewEvent(job, exp.minions))
    if exp.minions:  # a user's job goes to the minions their rights were checked on, and no other can read it
        await _send(ctx, job, exp.minions,
                    req.private or not who.root or len(exp.minions) <= ctx.settings.private_publish_max)
    ctx.metrics.published(job.fun, len(exp.minions))
    if ctx.auth is not None:
        record(ctx.auth, who, "publish", "allowed", load, jid=jid, minions=len(exp.minions))
    return PublishReply(jid, exp.minions, exp.no_grains, warning).to_wire()


async def _send(ctx: WorkerContext, job: Job, minions: list[str], private: bool) -> None:
    """Once under the shared publish key, or once per minion (under a key only it holds, in its topic bucket)."""
    session = await ctx.stores.session.current()
    if not private:
        await ctx.publisher.send(seal_publication(ctx.identity, session.publish_key, session.serial, job), BROADCAST)
        return
    for mid in minions:
        key = private_publish_key(request_key(session.secret, session.serial, mid))
        await ctx.publisher.send(seal_publication(ctx.identity, key, session.serial, job, to=mid), bucket(mid))


async def handle_lookup(ctx: WorkerContext, load: dict) -> dict:
    """A job's expected minions and its stored returns (of the minions asked for, else of all), paged by size;
    and how long ago the master last heard from each minion asked for (a sealed request it opened)."""
    try:
        who = await _principal(ctx, load, "lookup")
    except Refused as exc:
        return exc.reply
    try:
        req = LookupRequest.from_wire(load)
        job = await ctx.stores.jobs.get_job(req.jid)
        if ctx.auth is not None and not ctx.auth.may_see(who, job):
            raise NotPermitted(f"job {req.jid} is not {who.user}'s")
        try:
            stored = await ctx.stores.jobs.returns(req.jid)
        except ReturnsLost as exc:  # what is kept is still the best judge; the master's log says what was lost
            stored = exc.partial
    except ProtocolError as exc:
        return _refused_lookup(ctx, who, load, ErrorKind.BAD_REQUEST, str(exc))
    except UnknownJob:
        return _refused_lookup(ctx, who, load, ErrorKind.UNKNOWN_JOB, f"no job {req.jid} in the job cache")
    except NotPermitted as exc:
        return _refused_lookup(ctx, who, load, ErrorKind.PERMISSION, str(exc))
    if ctx.auth is not None:
        record(ctx.auth, who, "lookup", "allowed", jid=req.jid)
    now = time.monotonic()
    heard = ctx.presence.ages(req.ids or (), now)
    connected = await _connected(ctx, req.ids)
    wanted = sorted(stored if req.ids is None else set(req.ids) & stored.keys())
    returns: dict[str, dict] = {}
    size = 0
    for n, minion_id in enumerate(wanted):
        size += len(encode(stored[minion_id]))
        if returns and size > LOOKUP_REPLY_BYTES:
            return LookupReply(job.minions, job.no_grains, returns, wanted[n:], heard, connected).to_wire()
        returns[minion_id] = stored[minion_id]
    return LookupReply(job.minions, job.no_grains, returns, heard=heard, connected=connected).to_wire()


async def _connected(ctx: WorkerContext, ids: list[str] | None) -> list[str] | None:
    """Which of `ids` hold a live publish connection now, by the publisher's report; None when the report
    cannot tell (no ids asked, no report, its publisher gone or restarting, the report unreadable)."""
    if not ids or ctx.connections is None:
        return None
    try:
        report = await ctx.connections.read()
    except (StoreError, OSError):
        return None
    if report is None or not report.live:
        return None
    return [m for m in ids if m in report.minions]


def _refused_lookup(ctx: WorkerContext, who: Principal, load: dict, kind: ErrorKind, message: str) -> dict:
    if ctx.auth is not None:
        record(ctx.auth, who, "lookup", "refused", jid=load.get("jid"), reason=message)
    return error(kind, message)
