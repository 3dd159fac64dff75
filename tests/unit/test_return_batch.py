"""A worker's sealed lane answered together (handlers.dispatch_many): the returns among the requests are
stored with one store write, and every request is answered as `dispatch` would answer it alone; a request
of another command ends the run.  Real stores on files, requests sealed as a minion seals them."""

from __future__ import annotations

import time

from rx.master.context import WorkerContext, WorkerSettings
from rx.master.handlers import dispatch, dispatch_many
from rx.master.store import JobRecord
from rx.transport import messages as m
from rx.transport.codec import encode
from rx.transport.crypto import Identity
from rx.transport.handshake import request_key
from rx.transport.ids import new_jid
from rx.transport.messages import AesRequest, Job, JobReturn
from rx.transport.replies import is_error
from rx.transport.secure import open_reply, seal_request
from tests.support.bus import RecordingBus


class Minion:
    def __init__(self, minion_id: str, secret: bytes, serial: int) -> None:
        self.id, self.serial, self.key = minion_id, serial, request_key(secret, serial, minion_id)

    def send(self, cmd: str, load: dict) -> tuple[list[bytes], AesRequest]:
        req = seal_request(self.key, self.id, self.serial, cmd, load)
        return [encode(req.to_wire())], req

    def answer(self, req: AesRequest, reply: dict) -> dict:
        return reply if is_error(reply) else open_reply(self.key, req, reply)


async def _setup(stores) -> tuple[WorkerContext, str, dict[str, Minion]]:
    session = await stores.session.current()
    minions = {i: Minion(i, session.secret, session.serial) for i in ("web1", "web2", "db1")}
    for minion_id in ("web1", "web2"):
        await stores.keys.write("accepted", minion_id, Identity.generate().public)
    jid = new_jid()
    job = Job(jid=jid, fun="test.ping", arg=[], kwarg={}, tgt="web*", tgt_type="glob", ts=time.time())
    await stores.jobs.create_job(JobRecord(job, ["web1", "web2"]))
    ctx = WorkerContext(identity=None, stores=stores, root_key="", events=RecordingBus(),  # type: ignore
                        publisher=RecordingBus(), settings=WorkerSettings(False, 300.0, 0, 4505, {}))
    return ctx, jid, minions


def _ret(jid: str, value: object = True) -> dict:
    return JobReturn(jid, "test.ping", [], 0, True, value).to_wire()


async def test_returns_are_stored_together_and_each_answered_as_alone(stores):
    ctx, jid, minions = await _setup(stores)
    web1, web2, db1 = minions["web1"], minions["web2"], minions["db1"]
    sent = [web1.send(m.RETURN, _ret(jid)), web1.send(m.RETURN, _ret(jid, "again")),
            web2.send(m.RETURN, {"jid": jid}), db1.send(m.RETURN, _ret(jid)), ([b"\x92junk"], None),
            web2.send(m.RETURN, _ret(jid, 2)), web1.send(m.MINION_EVENT, {"tag": "hello", "data": {}}),
            web2.send(m.RETURN, _ret(jid, "after the event"))]
    senders = [web1, web1, web2, db1, None, web2, web1, web2]
    replies = await dispatch_many(ctx, [frames for frames, _req in sent])
    assert len(replies) == 7  # up to the event: the last return waits for the next call
    answers = [who.answer(req, reply) if who else reply for who, (_f, req), reply in zip(senders, sent, replies)]
    kinds = [a["error"]["type"] if is_error(a) else "ok" for a in answers]
    assert kinds == ["ok", "duplicate", "bad_request", "auth", "bad_request", "ok", "ok"]
    assert await stores.jobs.returns(jid) == {
        "web1": {"id": "web1", **_ret(jid)}, "web2": {"id": "web2", **_ret(jid, 2)}}
    assert ctx.events.fired == [f"rx/job/{jid}/ret/web1", f"rx/job/{jid}/ret/web2",  # type: ignore[attr-defined]
                                "rx/minion/web1/hello"]
    last = await dispatch_many(ctx, [sent[7][0]])
    assert web2.answer(sent[7][1], last[0])["error"]["type"] == "duplicate"


async def test_a_return_alone_is_answered_as_dispatch_answers_it(stores):
    ctx, jid, minions = await _setup(stores)
    frames, req = minions["web1"].send(m.RETURN, _ret(jid))
    assert minions["web1"].answer(req, (await dispatch_many(ctx, [frames]))[0]) == {"ok": True}
    again = [(await f(ctx, frames)) for f in (lambda c, b: dispatch(c, b), lambda c, b: _one(c, b))]
    assert [minions["web1"].answer(req, r)["error"]["type"] for r in again] == ["duplicate", "duplicate"]


async def _one(ctx: WorkerContext, frames: list[bytes]) -> dict:
    return (await dispatch_many(ctx, [frames]))[0]
