"""What an MWorker does with one request: authenticate it, then dispatch it
through an explicit table.  Nothing from the wire is ever used as an attribute name.

Clear (unauthenticated) commands: `_auth`; `publish` and `preview` (root key
required, and only from the local socket).
Sealed commands, from accepted minions only: `_return`, `_minion_event`, `_missed`.
"""

from __future__ import annotations

import hmac
import logging
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Mapping

import zmq
import zmq.asyncio

from rx.master.grainscache import GrainsCache
from rx.master.jobcache import JobCache, JobExists, UnknownJob
from rx.transport.ids import new_jid
from rx.master.keys import KeyError_, KeyStore, PendingFull
from rx.master.session import SessionState
from rx.targeting import MinionFacts, TargetError, compile_target, expand_nodegroups
from rx.transport.channels import EventBus
from rx.transport.codec import NETWORK_MAX_OBJECTS, DecodeError, decode, objects_within
from rx.transport.crypto import Identity, fingerprint
from rx.transport.handshake import AuthError, answer_auth, check_auth_request
from rx.transport.messages import (AesRequest, ClearRequest, ErrorInfo, Job, JobReturn, MinionEvent, ProtocolError,
                                   PublishRequest, parse_request)
from rx.transport.secure import Malformed, Rejected, StaleSerial, open_request, seal_publication, seal_reply

log = logging.getLogger(__name__)


@dataclass
class WorkerContext:
    """What handlers may use: nothing else reaches them."""

    identity: Identity
    keys: KeyStore
    session: SessionState
    jobs: JobCache
    root_key: str
    auto_accept: bool
    auth_window: float
    max_pending_keys: int
    events: EventBus
    publish_sock: zmq.asyncio.Socket
    grains: GrainsCache
    nodegroups: Mapping[str, Any]


class _DropLog:
    """Logs dropped requests, at most one line per second plus a count of the rest."""

    def __init__(self) -> None:
        self._last = 0.0
        self._suppressed = 0

    def __call__(self, why: str) -> None:
        now = time.monotonic()
        if now - self._last >= 1.0:
            extra = f" ({self._suppressed} more dropped since last report)" if self._suppressed else ""
            log.warning("dropped request: %s%s", why, extra)
            self._last, self._suppressed = now, 0
        else:
            self._suppressed += 1


drop_log = _DropLog()


def _error(kind: str, message: str) -> dict:
    return ErrorInfo(kind, message).to_wire()


# ---------------------------------------------------------------- clear commands

async def handle_auth(ctx: WorkerContext, load: dict) -> dict:
    try:
        req = check_auth_request(load, time.time(), ctx.auth_window)
        status = ctx.keys.decide(req.id, req.pub, ctx.auto_accept, ctx.max_pending_keys)
    except PendingFull as exc:
        drop_log(f"_auth: {exc}")
        return _error("auth", "the master is not filing new keys right now (too many pending)")
    except AuthError as exc:
        drop_log(f"_auth: {exc}")
        return _error("auth", str(exc))
    except (KeyError_, OSError) as exc:
        log.error("_auth: cannot file the key: %s", exc)
        return _error("auth", "the master cannot file this key; see its log")
    fp = fingerprint(req.pub)
    await ctx.events.fire("rx/auth", {"id": req.id, "status": status, "fingerprint": fp})
    if status in ("pending", "denied"):
        await ctx.events.fire("rx/key", {"id": req.id, "act": status, "fingerprint": fp})
    if status != "accepted":
        log.info("minion %s auth: %s (%s)", req.id, status, fp)
    ctx.session.refresh()
    reply = answer_auth(ctx.identity, req, status, ctx.session.secret, ctx.session.serial)
    return reply.to_wire()


def _check_root_key(ctx: WorkerContext, load: dict) -> dict | None:
    """None if the load carries the root key, else the error reply."""
    key = load.get("key")
    if not isinstance(key, str) or not hmac.compare_digest(key.encode(), ctx.root_key.encode()):
        log.warning("refused a client request: bad or missing root key")
        return _error("permission", "refused: missing or wrong root key")
    return None


@dataclass(frozen=True)
class _Expected:
    tgt: str | list
    tgt_type: str
    minions: list[str]
    no_grains: list[str]


def _expected(ctx: WorkerContext, req: PublishRequest) -> _Expected:
    """Expand nodegroups, then match every accepted minion (with cached grains when the target needs them)."""
    tgt, tgt_type = expand_nodegroups(req.tgt, req.tgt_type, ctx.nodegroups)
    target = compile_target(tgt, tgt_type, delimiter=req.delimiter)
    ids = ctx.keys.ids("accepted")
    facts = (MinionFacts(i, ctx.grains.get(i)) for i in ids) if target.uses_grains else (MinionFacts(i) for i in ids)
    minions, no_grains = target.select(facts)
    return _Expected(tgt, tgt_type, minions, no_grains)


def _parse_publish(ctx: WorkerContext, load: dict) -> tuple[PublishRequest, _Expected] | dict:
    denied = _check_root_key(ctx, load)
    if denied is not None:
        return denied
    try:
        req = PublishRequest.from_wire(load)
        return req, _expected(ctx, req)
    except ProtocolError as exc:
        return _error("bad_request", str(exc))
    except TargetError as exc:
        return _error("bad_target", str(exc))


async def handle_preview(ctx: WorkerContext, load: dict) -> dict:
    """The minions a target would reach, without publishing anything."""
    parsed = _parse_publish(ctx, load)
    if isinstance(parsed, dict):
        return parsed
    _req, exp = parsed
    return {"ok": True, "minions": exp.minions, "no_grains": exp.no_grains}


async def handle_publish(ctx: WorkerContext, load: dict) -> dict:
    parsed = _parse_publish(ctx, load)
    if isinstance(parsed, dict):
        return parsed
    req, exp = parsed
    jid = req.jid or new_jid()
    job = Job(jid=jid, fun=req.fun, arg=req.arg, kwarg=req.kwarg, tgt=exp.tgt, tgt_type=exp.tgt_type, ts=time.time(),
              user=req.user, delimiter=req.delimiter)
    try:
        ctx.jobs.create(jid, job.to_wire(), exp.minions, exp.no_grains)
    except JobExists:
        return _error("bad_request", f"job id {jid} is already in use")
    await ctx.events.fire(f"rx/job/{jid}/new", {**job.to_wire(), "minions": exp.minions})
    if exp.minions:
        ctx.session.refresh()
        frame = seal_publication(ctx.identity, ctx.session.publish_key, ctx.session.serial, job)
        await ctx.publish_sock.send(frame)
    return {"ok": True, "jid": jid, "minions": exp.minions, "no_grains": exp.no_grains}


# ---------------------------------------------------------------- sealed commands

async def handle_return(ctx: WorkerContext, minion_id: str, load: dict) -> dict:
    try:
        ret = JobReturn.from_wire(load)
    except ProtocolError as exc:
        return {"ok": False, "error": {"type": "bad_request", "message": str(exc)}}
    data = {"id": minion_id, **ret.to_wire()}
    try:
        fresh = ctx.jobs.store_return(ret.jid, minion_id, data)
    except UnknownJob:
        return {"ok": False, "error": {"type": "unknown_job", "message": f"no job {ret.jid}"}}
    if not fresh:
        drop_log(f"duplicate return for {ret.jid} from {minion_id}")
        return {"ok": False, "error": {"type": "duplicate", "message": "return already stored"}}
    await ctx.events.fire(f"rx/job/{ret.jid}/ret/{minion_id}", data)
    return {"ok": True}


async def handle_minion_event(ctx: WorkerContext, minion_id: str, load: dict) -> dict:
    try:
        ev = MinionEvent.from_wire(load)
    except ProtocolError as exc:
        return {"ok": False, "error": {"type": "bad_request", "message": str(exc)}}
    if ev.tag in GRAINS_TAGS and isinstance(ev.data.get("grains"), dict):
        ctx.grains.store(minion_id, ev.data["grains"])
    await ctx.events.fire(f"rx/minion/{minion_id}/{ev.tag}", {**ev.data, "id": minion_id})
    return {"ok": True}


NONCE_CHECKED = frozenset({"_minion_event"})
"""Sealed commands whose replay is refused by nonce (returns are de-duplicated by (jid, id) instead)."""

GRAINS_TAGS = ("start", "grains")
"""Minion events whose `grains` the master caches for targeting."""


CATCH_UP_SECONDS = 15.0
"""How far back a reconnecting minion may ask for jobs it missed (a publication sent while its
SUB socket was reconnecting is lost on the wire); older jobs are left to the client's probe."""
CATCH_UP_MAX_JOBS = 64


async def handle_missed(ctx: WorkerContext, minion_id: str, load: dict) -> dict:
    """Jobs published to this minion since `since` (at most CATCH_UP_SECONDS ago) that it has not returned."""
    since = load.get("since")
    if not isinstance(since, (int, float)) or isinstance(since, bool):
        return {"ok": False, "error": {"type": "bad_request", "message": "since: a timestamp is required"}}
    first = new_jid(max(float(since), time.time() - CATCH_UP_SECONDS))
    jobs = []
    for jid in ctx.jobs.jids_since(first):
        try:
            record = ctx.jobs.load(jid)
        except UnknownJob:
            continue
        if minion_id in record.get("minions", ()) and not ctx.jobs.has_return(jid, minion_id):
            jobs.append(record["load"])
            if len(jobs) >= CATCH_UP_MAX_JOBS:
                break
    return {"ok": True, "jobs": jobs}


CLEAR_COMMANDS: dict[str, Callable[[WorkerContext, dict], Awaitable[dict]]] = {
    "_auth": handle_auth,
    "publish": handle_publish,
    "preview": handle_preview,
}
LOCAL_ONLY = frozenset({"publish", "preview"})
"""Clear commands accepted only from the master's local socket, never from the network."""
SECURE_COMMANDS: dict[str, Callable[[WorkerContext, str, dict], Awaitable[dict]]] = {
    "_return": handle_return,
    "_minion_event": handle_minion_event,
    "_missed": handle_missed,
}


async def dispatch(ctx: WorkerContext, frames: list[bytes], *, local: bool = False) -> dict:
    """Handle one request body; always returns a reply, never raises for bad input.

    `local` is True for requests from the master's local socket (master_req.ipc).
    """
    if len(frames) != 1:
        drop_log(f"{len(frames)} body frames")
        return _error("bad_request", "malformed request")
    if not local and not objects_within(frames[0], NETWORK_MAX_OBJECTS):
        drop_log(f"{len(frames[0])}-byte frame is not one msgpack value of at most {NETWORK_MAX_OBJECTS} objects")
        return _error("bad_request", "malformed request")
    try:
        req = parse_request(decode(frames[0]))
    except (DecodeError, ProtocolError) as exc:
        drop_log(str(exc))
        return _error("bad_request", "malformed request")
    if isinstance(req, ClearRequest):
        handler = CLEAR_COMMANDS.get(req.cmd)
        if handler is None or (req.cmd in LOCAL_ONLY and not local):
            drop_log(f"clear command {req.cmd[:64]!r} refused on the {'local' if local else 'network'} socket")
            return _error("bad_request", "unknown command")
        return await handler(ctx, req.load)
    return await _dispatch_secure(ctx, req)


async def _dispatch_secure(ctx: WorkerContext, req: AesRequest) -> dict:
    if not ctx.keys.is_accepted(req.id):
        drop_log(f"sealed request from {req.id!r}, which is not an accepted minion")
        return _error("auth", "not an accepted minion: authenticate again")
    ctx.session.refresh()
    try:
        key, cmd = open_request(ctx.session.secret, ctx.session.serial, req, time.time(), ctx.auth_window)
    except StaleSerial:
        return _error("reauth", "session key rotated: authenticate again")
    except Rejected as exc:
        drop_log(f"sealed request claiming {req.id!r} does not open: {exc}")
        return _error("auth", "request does not authenticate")
    except Malformed as exc:
        drop_log(f"sealed request from {req.id} is malformed: {exc}")
        return seal_reply(exc.key, req.id, ctx.session.serial,
                          {"ok": False, "error": {"type": "bad_request", "message": f"malformed request: {exc}"}})
    handler = SECURE_COMMANDS.get(cmd.cmd)
    if cmd.cmd in NONCE_CHECKED and not ctx.jobs.first_use(req.nonce, time.time()):
        drop_log(f"replayed {cmd.cmd} from {req.id}")
        reply: dict[str, Any] = {"ok": False, "error": {"type": "duplicate", "message": "replayed request"}}
        return seal_reply(key, req.id, ctx.session.serial, reply)
    if handler is None:
        drop_log(f"unknown command {cmd.cmd[:64]!r} from {req.id}")
        reply = {"ok": False, "error": {"type": "bad_request", "message": "unknown command"}}
    else:
        reply = await handler(ctx, req.id, cmd.load)
    return seal_reply(key, req.id, ctx.session.serial, reply)
