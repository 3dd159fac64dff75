"""Commands from minions: the clear `_auth` handshake and the sealed `_return`,
`_minion_event` and `_missed`.  A sealed command's minion id is the one its key proved."""

from __future__ import annotations

import logging
import time

from rx.master.context import WorkerContext, drop_log, error, evict_log, unavailable
from rx.master.metrics.process import return_outcome
from rx.master.store import JobTarget, KeyStoreError, NotExpected, StoreError, UnknownJob
from rx.targeting import MinionFacts, TargetError, compile_target
from rx.transport.crypto import fingerprint
from rx.transport.errors import ErrorKind
from rx.transport.events import GRAINS_TAGS, AuthEvent, JobRetEvent, KeyEvent, MinionFired
from rx.transport.handshake import AuthError, answer_auth, check_auth_request
from rx.transport.ids import new_jid
from rx.transport.messages import JobReturn, MinionEvent, MissedRequest
from rx.transport.replies import Ack, MissedReply

log = logging.getLogger("rx.master.handlers")

CATCH_UP_SECONDS = 15.0
"""How far back a reconnecting minion may ask for jobs it missed (a publication sent while its
SUB socket was reconnecting is lost on the wire); older jobs are left to the client's probe."""
CATCH_UP_MAX_JOBS = 64


AUTH_NONCE_PREFIX = b"rx/auth\0"
"""Auth nonces share the replay guard with sealed requests' nonces, in their own namespace."""


async def handle_auth(ctx: WorkerContext, load: dict) -> dict:
    """Answer a signed `_auth` once: a replayed request (same nonce, within the timestamp window) is
    refused before any key is filed or event fired.  The guard keeps nonces for twice the window
    (maintenance), longer than any request stays fresh."""
    s = ctx.settings
    now = time.time()
    try:
        req = check_auth_request(load, now, s.auth_window_seconds)
    except AuthError as exc:
        drop_log(f"_auth: {exc}")
        ctx.metrics.auth("invalid")
        return error(ErrorKind.AUTH, str(exc))
    if not await ctx.stores.replay.first_use(AUTH_NONCE_PREFIX + req.nonce, now):
        drop_log(f"_auth: replayed auth request for {req.id!r}")
        ctx.metrics.auth("invalid")
        return error(ErrorKind.AUTH, "this auth request was already answered (a replay?): send a new one")
    try:
        decision = await ctx.stores.keys.decide(req.id, req.pub, s.auto_accept or ctx.autosign.matches(req.id),
                                                s.max_pending_keys)
    except (KeyStoreError, OSError) as exc:
        log.error("_auth: cannot file the key: %s", exc)
        ctx.metrics.auth("error")
        return error(ErrorKind.AUTH, "the master cannot file this key; see its log")
    status = decision.status
    session = await ctx.stores.session.current()
    try:
        reply = answer_auth(ctx.identity, req, status, session.secret, session.serial, s.publish_port).to_wire()
    except AuthError as exc:
        drop_log(f"_auth: {exc}")
        ctx.metrics.auth("invalid")
        return error(ErrorKind.AUTH, str(exc))
    ctx.metrics.auth(status)
    for gone in decision.evicted:
        evict_log(f"{gone.id!r} ({gone.fingerprint}), the oldest of max_pending_keys={s.max_pending_keys}, "
                  f"to file {req.id!r}")
        await ctx.fire(KeyEvent(gone.id, "evict", gone.fingerprint))
    fp = fingerprint(req.pub)
    await ctx.fire(AuthEvent(req.id, status, fp))
    if status in ("pending", "denied"):
        await ctx.fire(KeyEvent(req.id, status, fp))
    if status != "accepted":
        log.info("minion %s auth: %s (%s)", req.id, status, fp)
    return reply


async def handle_return(ctx: WorkerContext, minion_id: str, ret: JobReturn) -> dict:
    event = JobRetEvent(minion_id, ret)
    data = event.to_wire()
    metrics = ctx.metrics
    try:
        try:
            fresh = await _store_return(ctx, ret.jid, minion_id, data, True)
        except NotExpected as exc:
            if not await _may_match(ctx, exc.target, minion_id):
                drop_log(f"return for {ret.jid} from {minion_id}, which the job did not target")
                metrics.returned(ret, "not_targeted")
                return error(ErrorKind.PERMISSION, f"job {ret.jid} did not target {minion_id}")
            fresh = await _store_return(ctx, ret.jid, minion_id, data, False)
    except UnknownJob:
        metrics.returned(ret, "unknown_job")
        return error(ErrorKind.UNKNOWN_JOB, f"no job {ret.jid}")
    except (StoreError, OSError):
        metrics.returned(ret, "unavailable")
        raise
    if not fresh:
        drop_log(f"duplicate return for {ret.jid} from {minion_id}")
        metrics.returned(ret, "duplicate")
        return error(ErrorKind.DUPLICATE, "return already stored")
    await ctx.events.fire(event.tag, data)
    metrics.returned(ret, return_outcome(ret))
    return Ack().to_wire()


async def handle_returns(ctx: WorkerContext, returns: list[tuple[str, JobReturn]]) -> list[dict]:
    """Several returns (minion id, return) stored with one store write, then their events fired together (a
    job's as one bus message); each is answered as handle_return answers it (a return from outside its job's
    expected set takes that path).
    StoreError when the write fails: none is stored then."""
    metrics = ctx.metrics
    events = [JobRetEvent(minion_id, ret) for minion_id, ret in returns]
    datas = [event.to_wire() for event in events]
    start = time.perf_counter()
    try:
        results = await ctx.stores.jobs.store_returns([(ret.jid, minion_id, data)
                                                       for (minion_id, ret), data in zip(returns, datas)])
    except (StoreError, OSError):
        for _minion_id, ret in returns:
            metrics.returned(ret, "unavailable")
        raise
    finally:
        each = (time.perf_counter() - start) / len(returns)
        for _ in returns:
            metrics.store_writes["store_return"].observe(each)
    replies, fired = [], []
    for (minion_id, ret), event, data, result in zip(returns, events, datas, results):
        if result is True:
            fired.append((event.tag, data))
            metrics.returned(ret, return_outcome(ret))
            replies.append(Ack().to_wire())
        elif result is False:
            drop_log(f"duplicate return for {ret.jid} from {minion_id}")
            metrics.returned(ret, "duplicate")
            replies.append(error(ErrorKind.DUPLICATE, "return already stored"))
        elif isinstance(result, UnknownJob):
            metrics.returned(ret, "unknown_job")
            replies.append(error(ErrorKind.UNKNOWN_JOB, f"no job {ret.jid}"))
        else:  # NotExpected (may it match now?) or StoreUnavailable for this one: as if it came alone
            try:
                replies.append(await handle_return(ctx, minion_id, ret))
            except (StoreError, OSError) as exc:
                replies.append(unavailable(exc))
    if fired:
        await ctx.events.fire_many(fired)
    return replies


async def _store_return(ctx: WorkerContext, jid: str, minion_id: str, data: dict, expected_only: bool) -> bool:
    start = time.perf_counter()
    try:
        return await ctx.stores.jobs.store_return(jid, minion_id, data, expected_only=expected_only)
    finally:
        ctx.metrics.store_writes["store_return"].observe(time.perf_counter() - start)


async def _may_match(ctx: WorkerContext, target: JobTarget, minion_id: str) -> bool:
    """Whether a minion outside a job's expected set may match its target now (with its cached grains and
    pillar, or unknown without them): one accepted after the job was published and before it returned."""
    try:
        compiled = compile_target(target.tgt, target.tgt_type, delimiter=target.delimiter)
    except TargetError:
        return False
    grains = await ctx.stores.grains.get(minion_id) if compiled.uses_grains else None
    pillar = await ctx.pillar.cache.get(minion_id) if compiled.uses_pillar and ctx.pillar is not None else None
    verdict = compiled.match(MinionFacts(minion_id, grains, pillar))
    return verdict is None or bool(verdict)


async def handle_minion_event(ctx: WorkerContext, minion_id: str, ev: MinionEvent) -> dict:
    if ev.tag in GRAINS_TAGS and isinstance(ev.data.get("grains"), dict):
        await ctx.stores.grains.store(minion_id, ev.data["grains"])
    await ctx.fire(MinionFired(minion_id, ev.tag, ev.data))
    return Ack().to_wire()


async def handle_missed(ctx: WorkerContext, minion_id: str, req: MissedRequest) -> dict:
    """Jobs published to this minion since `since` (at most CATCH_UP_SECONDS ago) that it has not returned
    and that have not expired (their client stopped waiting: the minion would refuse them anyway)."""
    now = time.time()
    first = new_jid(max(req.since, now - CATCH_UP_SECONDS))
    jobs = []
    for jid in await ctx.stores.jobs.jids(first):
        try:
            job, minions = await ctx.recent_jobs.get(jid, ctx.stores.jobs.get_job)
        except StoreError:
            continue
        if minion_id in minions and not job.expired(now) and not await ctx.stores.jobs.has_return(jid, minion_id):
            jobs.append(job)
            if len(jobs) >= CATCH_UP_MAX_JOBS:
                break
    return MissedReply(jobs).to_wire()
