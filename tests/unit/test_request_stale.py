"""Requests made while the master is down never reach it later: a request client queues a request only on an
established connection (ZMQ_IMMEDIATE), so the attempts that timed out during a master restart are not
delivered all at once to the new master, long after their senders stopped waiting.  Real zmq sockets: the
client's DEALER and a ROUTER standing in for the master, bound, closed and bound again on one port."""

from __future__ import annotations

import asyncio

import pytest
import zmq
import zmq.asyncio

from rx.transport.codec import decode, encode
from rx.transport.zmq_transport import RequestTimeout, ZmqTransport


def _master(ctx: zmq.asyncio.Context, port: int) -> zmq.asyncio.Socket:
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.bind(f"tcp://127.0.0.1:{port}")
    return sock


async def _answer_until(master: zmq.asyncio.Socket, live: dict) -> list:
    """Every request the master receives, answering each, until the live one; the ones before it."""
    seen = []
    while True:
        peer, rid, empty, body = await master.recv_multipart()
        await master.send_multipart([peer, rid, empty, encode({"ok": True})])
        if decode(body) == live:
            return seen
        seen.append(decode(body))


async def _stale_after_restart(attempts: int) -> list:
    ctx = zmq.asyncio.Context()
    transport = ZmqTransport(ctx)
    master = ctx.socket(zmq.ROUTER)
    master.setsockopt(zmq.LINGER, 0)
    port = master.bind_to_random_port("tcp://127.0.0.1")
    client = transport.request_client(f"tcp://127.0.0.1:{port}")
    try:
        answering = asyncio.get_running_loop().create_task(_answer_until(master, {"n": "first"}))
        assert await client.request({"n": "first"}, timeout=10) == {"ok": True}
        await answering
        master.close(linger=0)  # the master stops
        for i in range(attempts):
            with pytest.raises(RequestTimeout):
                await client.request({"n": i}, timeout=0.2)
        master = _master(ctx, port)  # and comes back
        answering = asyncio.get_running_loop().create_task(_answer_until(master, {"n": "live"}))
        assert await client.request({"n": "live"}, timeout=10, retries=5) == {"ok": True}
        return await answering
    finally:
        await client.aclose()
        master.close(linger=0)
        ctx.destroy(linger=0)


def test_requests_that_timed_out_while_the_master_was_down_never_reach_it():
    assert asyncio.run(_stale_after_restart(5)) == []
