"""What an MWorker does with one request: authenticate it, then dispatch it through an
explicit table.  Nothing from the wire is ever used as an attribute name.

Clear (unauthenticated) commands: `_auth`; `publish`, `preview` and `lookup` (root key required,
and only from the local socket; a request's `auth` may narrow it to a user: rx.master.access).  Sealed commands, from accepted minions only: `_return`,
`_minion_event`, `_missed`, `_call_return` (rx-call's return), and the file server's `_file_list`, `_file_hash`,
`_serve_file`, `_file_recv`; `_pillar` (a minion's own pillar).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from rx.master.call_cmds import handle_call_return
from rx.master.context import WorkerContext, drop_log, error, unavailable
from rx.master.file_cmds import handle_file_list, handle_file_recv, handle_file_stat, handle_serve_file
from rx.master.minion_cmds import handle_auth, handle_minion_event, handle_missed, handle_return, handle_returns
from rx.master.pillar.handler import handle_pillar
from rx.master.publish import handle_lookup, handle_preview, handle_publish
from rx.master.store import SessionKeys, StoreError
from rx.transport import filemsgs as fm, messages as m, pillarmsgs
from rx.transport.callmsgs import CALL_RETURN, CallReturn
from rx.transport.codec import MAX_OBJECTS, NETWORK_MAX_CLEAR_BYTES, NETWORK_MAX_OBJECTS, DecodeError, decode
from rx.transport.errors import ErrorKind, ProtocolError
from rx.transport.messages import AesRequest, ClearRequest, JobReturn, SecureCommand, looks_sealed, parse_request
from rx.transport.secure import Malformed, Rejected, StaleSerial, open_request, seal_reply

CLEAR_COMMANDS: dict[str, Callable[[WorkerContext, dict], Awaitable[dict]]] = {
    m.AUTH: handle_auth,
    m.PUBLISH: handle_publish,
    m.PREVIEW: handle_preview,
    m.LOOKUP: handle_lookup,
}
LOCAL_ONLY = frozenset({m.PUBLISH, m.PREVIEW, m.LOOKUP})
"""Clear commands accepted only from the master's local socket, never from the network."""
SECURE_COMMANDS: dict[str, tuple[Any, Callable[[WorkerContext, str, Any], Awaitable[dict]]]] = {
    m.RETURN: (m.JobReturn, handle_return),
    m.MINION_EVENT: (m.MinionEvent, handle_minion_event),
    m.MISSED: (m.MissedRequest, handle_missed),
    fm.FILE_LIST: (fm.FileListRequest, handle_file_list),
    fm.FILE_STAT: (fm.FileStatRequest, handle_file_stat),
    fm.SERVE_FILE: (fm.ChunkRequest, handle_serve_file),
    fm.FILE_RECV: (fm.PushRequest, handle_file_recv),
    CALL_RETURN: (CallReturn, handle_call_return),
    pillarmsgs.PILLAR: (pillarmsgs.PillarRequest, handle_pillar),
}
"""Sealed command -> (the typed load it carries, its handler); the load is parsed before the handler runs."""
NONCE_CHECKED = frozenset({m.MINION_EVENT, fm.FILE_RECV, CALL_RETURN})
"""Sealed commands whose replay is refused by nonce (returns are de-duplicated by (jid, id) instead)."""


LOCAL_LANE, SEALED_LANE, CLEAR_LANE, REFUSED = 0, 1, 2, 3
"""A worker's lanes, served in this order: the operator's local socket, then sealed network requests, then
clear ones (`_auth`); REFUSED requests are answered at once.  See mworker.LANES."""


def network_lane(body: list[bytes]) -> int:
    """The worker lane of a network request: what looks sealed (a minion's return or event) is served
    before clear requests (`_auth`); anything else over NETWORK_MAX_CLEAR_BYTES is refused unread.  A
    clear request that looks sealed is refused by `dispatch`."""
    if len(body) == 1 and looks_sealed(body[0]):
        return SEALED_LANE
    return CLEAR_LANE if sum(map(len, body)) <= NETWORK_MAX_CLEAR_BYTES else REFUSED


async def dispatch(ctx: WorkerContext, frames: list[bytes], *, local: bool = False) -> dict:
    """Handle one request body; always returns a reply, never raises for bad input.

    `local` is True for requests from the master's local socket (master_req.ipc).
    """
    req = _parse(frames, local)
    if isinstance(req, dict):
        return req
    try:
        if isinstance(req, ClearRequest):
            handler = CLEAR_COMMANDS.get(req.cmd)
            if handler is None or (req.cmd in LOCAL_ONLY and not local):
                drop_log(f"clear command {req.cmd[:64]!r} refused on the {'local' if local else 'network'} socket")
                return error(ErrorKind.BAD_REQUEST, "unknown command")
            return await handler(ctx, req.load)
        opened = await _open(ctx, req)
        return opened if isinstance(opened, dict) else await _answer(ctx, opened)
    except (StoreError, OSError) as exc:
        return unavailable(exc)


async def dispatch_many(ctx: WorkerContext, bodies: list[list[bytes]]) -> list[dict]:
    """Network requests answered together, each as `dispatch` answers it, except that the `_return`s among
    them are stored with one store write (minion_cmds.handle_returns) and answered after it.  A sealed
    request of another command ends the run: the returns before it are stored, then it is handled, and the
    replies are for that prefix of `bodies` only (the caller keeps the rest for the next call)."""
    replies: list[dict] = []
    returns: list[tuple[int, _Opened, JobReturn]] = []
    session: SessionKeys | None = None
    for frames in bodies:
        req = _parse(frames, False)
        if not isinstance(req, AesRequest):
            replies.append(req if isinstance(req, dict) else await dispatch(ctx, frames))
            continue
        try:
            session = session or await ctx.stores.session.current()  # read once a batch
            opened = await _open(ctx, req, session)
        except (StoreError, OSError) as exc:
            replies.append(unavailable(exc))
            continue
        if isinstance(opened, dict):
            replies.append(opened)
            continue
        if opened.cmd.cmd == m.RETURN:
            try:
                returns.append((len(replies), opened, JobReturn.from_wire(opened.cmd.load)))
                replies.append({})
            except ProtocolError as exc:
                drop_log(f"{m.RETURN} from {req.id}: {exc}")
                replies.append(opened.seal(error(ErrorKind.BAD_REQUEST, str(exc))))
            continue
        await _store_returns(ctx, returns, replies)
        try:
            replies.append(await _answer(ctx, opened))
        except (StoreError, OSError) as exc:
            replies.append(unavailable(exc))
        return replies
    await _store_returns(ctx, returns, replies)
    return replies


async def _store_returns(ctx: WorkerContext, returns: list[tuple[int, "_Opened", JobReturn]],
                         replies: list[dict]) -> None:
    """Store the returns gathered so far and put their replies in their places."""
    if not returns:
        return
    try:
        answers = await handle_returns(ctx, [(opened.req.id, ret) for _i, opened, ret in returns])
    except (StoreError, OSError) as exc:
        answers = [unavailable(exc)] * len(returns)
        for (i, _opened, _ret), answer in zip(returns, answers):
            replies[i] = answer
    else:
        for (i, opened, _ret), answer in zip(returns, answers):
            replies[i] = opened.seal(answer)
    returns.clear()


def _parse(frames: list[bytes], local: bool) -> ClearRequest | AesRequest | dict:
    """The request envelope, or the error reply for a malformed one."""
    if len(frames) != 1:
        drop_log(f"{len(frames)} body frames")
        return error(ErrorKind.BAD_REQUEST, "malformed request")
    try:
        req = parse_request(decode(frames[0], max_objects=MAX_OBJECTS if local else NETWORK_MAX_OBJECTS))
    except (DecodeError, ProtocolError) as exc:
        drop_log(str(exc))
        return error(ErrorKind.BAD_REQUEST, "malformed request")
    if isinstance(req, ClearRequest) and not local and (len(frames[0]) > NETWORK_MAX_CLEAR_BYTES
                                                        or looks_sealed(frames[0])):
        drop_log(f"{len(frames[0])}-byte clear request: over {NETWORK_MAX_CLEAR_BYTES} bytes or dressed as sealed")
        return error(ErrorKind.BAD_REQUEST, "malformed request")
    return req


@dataclass(frozen=True)
class _Opened:
    """A sealed request that opened: who sent it (proven by its key), and the command inside."""

    req: AesRequest
    key: bytes
    serial: int
    cmd: SecureCommand

    def seal(self, reply: dict) -> dict:
        return seal_reply(self.key, self.req, self.serial, reply)


async def _open(ctx: WorkerContext, req: AesRequest, session: SessionKeys | None = None) -> _Opened | dict:
    """Authenticate a sealed request (an accepted minion's key opens it, it is fresh, its nonce is new where
    that is checked); the error reply if it does not.  `session`: the session keys read for its batch."""
    if not await ctx.stores.keys.is_accepted(req.id):
        drop_log(f"sealed request from {req.id!r}, which is not an accepted minion")
        return error(ErrorKind.AUTH, "not an accepted minion: authenticate again")
    if session is None:
        session = await ctx.stores.session.current()
    try:
        key, cmd = open_request(session.secret, session.serial, req, time.time(), ctx.settings.auth_window_seconds,
                                ctx.request_keys)
    except StaleSerial:
        return error(ErrorKind.REAUTH, "session key rotated: authenticate again")
    except Rejected as exc:
        drop_log(f"sealed request claiming {req.id!r} does not open: {exc}")
        return error(ErrorKind.AUTH, "request does not authenticate")
    except Malformed as exc:
        drop_log(f"sealed request from {req.id} is malformed: {exc}")
        return seal_reply(exc.key, req, session.serial, error(ErrorKind.BAD_REQUEST, f"malformed request: {exc}"))
    ctx.presence.heard(req.id, time.monotonic())
    opened = _Opened(req, key, session.serial, cmd)
    if cmd.cmd in NONCE_CHECKED and not await ctx.stores.replay.first_use(req.nonce, time.time()):
        drop_log(f"replayed {cmd.cmd} from {req.id}")
        return opened.seal(error(ErrorKind.DUPLICATE, "replayed request"))
    return opened


async def _answer(ctx: WorkerContext, opened: _Opened) -> dict:
    """Run an opened command's handler on its typed load; the sealed reply."""
    cmd, req = opened.cmd, opened.req
    entry = SECURE_COMMANDS.get(cmd.cmd)
    if entry is None:
        drop_log(f"unknown command {cmd.cmd[:64]!r} from {req.id}")
        return opened.seal(error(ErrorKind.BAD_REQUEST, "unknown command"))
    load_type, handler = entry
    try:
        load = load_type.from_wire(cmd.load)
    except ProtocolError as exc:
        drop_log(f"{cmd.cmd} from {req.id}: {exc}")
        return opened.seal(error(ErrorKind.BAD_REQUEST, str(exc)))
    return opened.seal(await handler(ctx, req.id, load))
