"""The sealed `_pillar` request: compile the pillar of the minion whose key sealed the request, keep it in
the pillar cache, and answer with it (sealed to that minion and bound to its request by the dispatcher).

A request that names another minion is refused and logged: a minion only ever gets its own pillar.
A pillar that does not compile is answered with the error (file and line) and the last pillar this minion
was sent, from the cache, so the minion keeps its last good pillar even across its restart (and pillar
targets, decided from the cache, agree with it); a RENDER error when it was never sent one.  Neither the pillar nor the request's
grains are logged or fired as an event, and nothing of it goes to the job store.
"""

from __future__ import annotations

import logging

from rx.master.context import DropLog, WorkerContext, error, store_log
from rx.master.pillar.sources import PillarError
from rx.transport.codec import MAX_DEPTH, MAX_OBJECTS, DecodeError, check_structure, encode
from rx.transport.errors import ErrorKind
from rx.transport.pillarmsgs import MAX_PILLAR_BYTES, PillarReply, PillarRequest

refused_log = DropLog("refused a pillar request", "refused")
render_log = DropLog("could not compile a pillar", "not compiled", level=logging.ERROR)


async def handle_pillar(ctx: WorkerContext, minion_id: str, req: PillarRequest) -> dict:
    if req.id and req.id != minion_id:
        refused_log(f"minion {minion_id!r} asked for the pillar of {req.id!r}")
        return error(ErrorKind.PERMISSION, f"a minion gets only its own pillar: this request is {minion_id!r}'s "
                                           f"(its key says so), not {req.id!r}'s")
    service = ctx.pillar
    if service is None:
        return error(ErrorKind.BAD_REQUEST, "this master serves no pillar")
    if not req.pillarenv and not service.configured():  # no top file, no external pillar: every pillar is {}
        await service.cache.remove(minion_id)  # one it had before pillar was removed no longer holds
        return PillarReply({}).to_wire()
    try:
        pillar = service.compiler.compile(minion_id, req.grains, req.pillarenv)
        reply = PillarReply(pillar).to_wire()
        try:
            frame = encode(reply)
            check_structure(frame, MAX_OBJECTS, MAX_DEPTH)
        except (DecodeError, ValueError, TypeError, OverflowError) as exc:
            raise PillarError("pillar", f"cannot be sent: {exc}") from None
        if len(frame) > MAX_PILLAR_BYTES:
            raise PillarError("pillar", f"is {len(frame)} bytes encoded, over the limit of {MAX_PILLAR_BYTES}")
    except PillarError as exc:
        render_log(f"pillar of {minion_id}: {exc}")
        last = await service.cache.get(minion_id)
        return error(ErrorKind.RENDER, str(exc)) if last is None else PillarReply(last, str(exc)).to_wire()
    try:
        await service.cache.store(minion_id, pillar)
    except OSError as exc:  # the minion still gets its pillar; pillar targets see the old one meanwhile
        store_log(f"cannot keep the pillar of {minion_id} in the pillar cache: {exc}")
    return reply
