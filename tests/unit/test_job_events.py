"""Events a job fires (event.send): from a real job process through its pipe to the minion's
`on_event`, with the limits (size, count, tags) on both ends."""

from __future__ import annotations

import asyncio
import os

import pytest

from rx.minion import jobevents
from rx.minion.executor import Executor
from rx.minion.registry import Registry
from rx.modules import CommandError, ExecContext
from rx.modules import event
from rx.transport.codec import encode
from rx.transport.messages import Job


def _job(jid: str, fun: str, arg: list, kwarg: dict | None = None) -> Job:
    return Job(jid=jid, fun=fun, arg=arg, kwarg=kwarg or {}, tgt="*", tgt_type="glob", ts=0.0)


def _executor(got: list) -> Executor:
    registry = Registry()
    return Executor(registry, ExecContext(minion_id="web1", grains={"os": "Debian", "num_cpus": 2},
                                          registry=registry), on_event=lambda tag, data: got.append((tag, data)))


async def test_event_send_in_a_job_reaches_the_minion_before_the_return():
    got: list = []
    ret = await _executor(got).run(_job("20240102030405060001", "event.send", ["app/deployed"],
                                        {"data": {"v": 1}, "status": "ok", "with_grains": ["os"]}))
    assert ret == {"return": True, "retcode": 0, "success": True}
    assert got == [("app/deployed", {"v": 1, "status": "ok", "grains": {"os": "Debian"}})]


async def test_a_job_without_an_event_handler_cannot_fire():
    registry = Registry()
    ex = Executor(registry, ExecContext(minion_id="web1", registry=registry))
    ret = await ex.run(_job("20240102030405060002", "event.send", ["app/x"]))
    assert ret["retcode"] == 1 and "needs a running minion" in ret["return"]


@pytest.mark.parametrize("tag, message", [("start", "reserved"), ("grains", "reserved"), ("../job/1/ret/m2", "'..'"),
                                          ("/rx/job/1", "relative"), ("", "1-512"), ("a\nb", "printable"),
                                          ("x" * 513, "1-512")])
async def test_bad_tags_are_refused_in_the_job(tag, message):
    got: list = []
    ret = await _executor(got).run(_job("20240102030405060003", "event.send", [tag]))
    assert ret["retcode"] == 1 and message in ret["return"] and got == []


async def test_an_event_over_the_size_limit_is_refused_in_the_job():
    got: list = []
    ret = await _executor(got).run(_job("20240102030405060004", "event.send", ["big"],
                                        {"blob": "x" * (jobevents.MAX_EVENT_BYTES + 1)}))
    assert ret["retcode"] == 1 and "over the" in ret["return"] and got == []


async def test_reader_limits_and_bad_frames():
    """The minion's end, fed by hand: a bad frame is dropped, the good ones after it still arrive; an
    oversized length ends the reading."""
    r, w = os.pipe()
    got: list = []
    reader = jobevents.EventReader(r, "j1", lambda tag, data: got.append(tag))
    writer = jobevents.EventWriter(w)
    writer("one", {})
    os.write(w, (3).to_bytes(4, "big") + b"\xc1\xc1\xc1")  # not msgpack
    reserved = encode({"tag": "start", "data": {"grains": {"os": "forged"}}})
    os.write(w, len(reserved).to_bytes(4, "big") + reserved)
    writer("two", {"k": [1, 2]})
    os.write(w, (jobevents.MAX_EVENT_BYTES + 1).to_bytes(4, "big"))
    writer("after-the-bad-length", {})
    await asyncio.wait_for(reader.done, 10)
    os.close(w)
    assert got == ["one", "two"]
    assert reader.fd == -1
    reader.close()  # idempotent


async def test_a_job_may_fire_at_most_max_job_events():
    r, w = os.pipe()
    got: list = []
    reader = jobevents.EventReader(r, "j2", lambda tag, data: got.append(tag))
    writer = jobevents.EventWriter(w)
    writer.sent = jobevents.MAX_JOB_EVENTS - 1
    writer("last", {})
    with pytest.raises(CommandError, match="1000 events"):
        writer("one-too-many", {})
    os.close(w)
    await asyncio.wait_for(reader.done, 10)
    assert got == ["last"]


def test_event_send_argument_errors():
    sent: list = []
    ctx = ExecContext(minion_id="m", grains={"a": 1, "b": 2}, fire_event=lambda t, d: sent.append((t, d)))
    assert event.send(ctx, "t", preload={"x": 1, "y": 1}, data={"y": 2}, z=3, with_grains="b") is True
    assert sent == [("t", {"x": 1, "y": 2, "z": 3, "grains": {"b": 2}})]
    assert event.fire_master(ctx, {"s": "ok"}, "legacy") is True and sent[-1] == ("legacy", {"s": "ok"})
    os.environ["RX_TEST_EVENT_ENV"] = "v"
    try:
        event.send(ctx, "t", with_env=["RX_TEST_EVENT_ENV", "RX_NOT_SET"])
    finally:
        del os.environ["RX_TEST_EVENT_ENV"]
    assert sent[-1][1] == {"env": {"RX_TEST_EVENT_ENV": "v"}}
    with pytest.raises(CommandError, match="data must be a map"):
        event.send(ctx, "t", data="text")
    with pytest.raises(CommandError, match="pillar"):
        event.send(ctx, "t", with_pillar=True)
    with pytest.raises(CommandError, match="running minion"):
        event.send(ExecContext(), "t")
