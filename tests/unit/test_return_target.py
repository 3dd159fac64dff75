"""A return from a minion outside its job's expected set (issue #8 item 4): stored only when the master's
own evaluation of the job's target, with the minion's cached grains, says it may match; refused and
logged otherwise.  Real stores on files, the handler called directly."""

from __future__ import annotations

import time

import pytest

from rx.master.context import WorkerContext, WorkerSettings
from rx.master.minion_cmds import handle_return
from rx.master.store import JobRecord
from rx.transport.ids import new_jid
from rx.transport.messages import Job, JobReturn
from tests.support.bus import RecordingBus


def _ctx(stores) -> WorkerContext:
    settings = WorkerSettings(False, 300.0, 0, 4505, {})
    return WorkerContext(identity=None, stores=stores, root_key="", events=RecordingBus(),  # type: ignore
                         publisher=RecordingBus(), settings=settings)


@pytest.mark.parametrize("tgt, tgt_type, grains, stored", [
    ("web*", "glob", None, True),                          # accepted after the publish, the glob matches
    ("db*", "glob", None, False),
    (["web1"], "list", None, False),
    ("os:Debian", "grain", {"os": "Debian"}, True),
    ("os:Debian", "grain", {"os": "Arch"}, False),
    ("os:Debian", "grain", None, True),                    # no grains cached: it may match
    ("G@os:Debian and not web9", "compound", {"os": "Debian"}, False),
    ("G@os:Debian or E@^web", "compound", {"os": "Arch"}, True),
    ("(", "compound", None, False),                        # a target the master cannot read any more
], ids=repr)
async def test_a_return_from_outside_the_expected_set(stores, tgt, tgt_type, grains, stored):
    jid = new_jid()
    job = Job(jid=jid, fun="test.ping", arg=[], kwarg={}, tgt=tgt, tgt_type=tgt_type, ts=time.time())
    await stores.jobs.create_job(JobRecord(job, ["web1"]))
    if grains is not None:
        await stores.grains.store("web9", grains)
    ctx = _ctx(stores)
    reply = await handle_return(ctx, "web9", JobReturn(jid, "test.ping", [], 0, True, True))
    assert reply["ok"] is stored
    assert ("web9" in await stores.jobs.returns(jid)) is stored
    assert ctx.events.fired == ([f"rx/job/{jid}/ret/web9"] if stored else [])  # type: ignore[attr-defined]
    if not stored:
        assert reply["error"]["type"] == "permission"


async def test_expected_minions_return_once(stores):
    jid = new_jid()
    job = Job(jid=jid, fun="test.ping", arg=[], kwarg={}, tgt="web1", tgt_type="glob", ts=time.time())
    await stores.jobs.create_job(JobRecord(job, ["web1"]))
    ret = JobReturn(jid, "test.ping", [], 0, True, True)
    assert (await handle_return(_ctx(stores), "web1", ret))["ok"] is True
    assert (await handle_return(_ctx(stores), "web1", ret))["error"]["type"] == "duplicate"
