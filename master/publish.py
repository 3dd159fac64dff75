"""Local-socket commands (root key required): `publish` a job, `preview` a target and `lookup` a
job's stored returns.

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
import time
from dataclasses import dataclass

from rx.master.context import WorkerContext, error, store_log
from rx.master.store import JobExists, JobRecord, ReturnsLost, StoreError, UnknownJob
from rx.targeting import MinionFacts, TargetError, compile_target, expand_nodegroups
from rx.transport.errors import ErrorKind, ProtocolError
from rx.transport.codec import encode
from rx.transport.events import JobNewEvent
from rx.transport.handshake import private_publish_key, request_key
from rx.transport.messages import Job, LookupRequest, PublishRequest
from rx.transport.replies import LookupReply, PreviewReply, PublishReply
from rx.transport.secure import seal_publication
from rx.transport.topics import BROADCAST, bucket

log = logging.getLogger("rx.master.handlers")

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
    """Expand nodegroups, then match every accepted minion (with cached grains and pillars when the target
    needs them)."""
    tgt, tgt_type = expand_nodegroups(req.tgt, req.tgt_type, ctx.settings.nodegroups)
    target = compile_target(tgt, tgt_type, delimiter=req.delimiter)
    ids = await ctx.stores.keys.ids("accepted")
    grains = await ctx.stores.grains.get_many(ids) if target.uses_grains else {}
    pillars = await ctx.pillar.cache.get_many(ids) if target.uses_pillar and ctx.pillar is not None else {}
    facts = [MinionFacts(i, grains.get(i), pillars.get(i)) for i in ids]
    minions, no_grains = target.select(facts)
    return Expected(tgt, tgt_type, minions, no_grains)


def _root_key_ok(ctx: WorkerContext, load: dict) -> bool:
    key = load.get("key")
    return isinstance(key, str) and hmac.compare_digest(key.encode(), ctx.root_key.encode())


async def _parse(ctx: WorkerContext, load: dict) -> tuple[PublishRequest, Expected] | dict:
    if not _root_key_ok(ctx, load):
        log.warning("refused a client request: bad or missing root key")
        return error(ErrorKind.PERMISSION, "refused: missing or wrong root key")
    try:
        req = PublishRequest.from_wire(load)
        return req, await expected(ctx, req)
    except ProtocolError as exc:
        return error(ErrorKind.BAD_REQUEST, str(exc))
    except TargetError as exc:
        return error(ErrorKind.BAD_TARGET, str(exc))


async def handle_preview(ctx: WorkerContext, load: dict) -> dict:
    """The minions a target would reach, without publishing anything."""
    parsed = await _parse(ctx, load)
    if isinstance(parsed, dict):
        return parsed
    _req, exp = parsed
    return PreviewReply(exp.minions, exp.no_grains).to_wire()


async def handle_publish(ctx: WorkerContext, load: dict) -> dict:
    parsed = await _parse(ctx, load)
    if isinstance(parsed, dict):
        return parsed
    req, exp = parsed
    jid = req.jid or ctx.jids.next()
    ts = time.time()
    job = Job(jid=jid, fun=req.fun, arg=req.arg, kwarg=req.kwarg, tgt=exp.tgt, tgt_type=exp.tgt_type, ts=ts,
              user=req.user, delimiter=req.delimiter, expires=req.expiry(ts))
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
    if exp.minions:
        await _send(ctx, job, exp.minions, req.private or len(exp.minions) <= ctx.settings.private_publish_max)
    ctx.metrics.published(job.fun, len(exp.minions))
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
    if not _root_key_ok(ctx, load):
        log.warning("refused a client request: bad or missing root key")
        return error(ErrorKind.PERMISSION, "refused: missing or wrong root key")
    try:
        req = LookupRequest.from_wire(load)
    except ProtocolError as exc:
        return error(ErrorKind.BAD_REQUEST, str(exc))
    try:
        record = await ctx.stores.jobs.get_job(req.jid)
        try:
            stored = await ctx.stores.jobs.returns(req.jid)
        except ReturnsLost as exc:  # what is kept is still the best judge; the master's log says what was lost
            stored = exc.partial
    except UnknownJob:
        return error(ErrorKind.UNKNOWN_JOB, f"no job {req.jid} in the job cache")
    now = time.monotonic()
    heard = ctx.presence.ages(req.ids or (), now)
    wanted = sorted(stored if req.ids is None else set(req.ids) & stored.keys())
    returns: dict[str, dict] = {}
    size = 0
    for n, minion_id in enumerate(wanted):
        size += len(encode(stored[minion_id]))
        if returns and size > LOOKUP_REPLY_BYTES:
            return LookupReply(record.minions, record.no_grains, returns, wanted[n:], heard).to_wire()
        returns[minion_id] = stored[minion_id]
    return LookupReply(record.minions, record.no_grains, returns, heard=heard).to_wire()
