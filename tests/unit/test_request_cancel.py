"""A request cancelled in the same loop turn as its reply arrives must end cancelled.

Python 3.11's asyncio.wait_for returned the reply in that case and dropped the cancellation, so a
minion told to stop carried on with its loop (its task never ended: the swarm's stop, and a real
minion's shutdown, waited for ever). The reply future is resolved by hand here to make the turn
exact; the socket is a real zmq DEALER."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from rx.transport.codec import encode
from rx.transport.zmq_transport import ZmqTransport

PRODUCT_DIRS = ("api", "client", "master", "minion", "modules", "runners", "transport")


async def _cancel_as_reply_arrives() -> asyncio.Task:
    transport = ZmqTransport()
    client = transport.request_client("tcp://127.0.0.1:9")  # nothing answers there
    task = asyncio.get_running_loop().create_task(client.request({"q": 1}, timeout=30))
    try:
        while not client._waiting:
            await asyncio.sleep(0)
        (fut,) = client._waiting.values()
        fut.set_result(encode({"a": 1}))
        task.cancel()
        await asyncio.wait({task}, timeout=5)
        return task
    finally:
        await client.aclose()
        transport.close()


def test_cancellation_at_the_reply_is_not_lost() -> None:
    task = asyncio.run(_cancel_as_reply_arrives())
    assert task.done()
    with pytest.raises(asyncio.CancelledError):
        task.result()


def test_product_code_does_not_use_wait_for() -> None:
    """asyncio.timeout() keeps a cancellation that meets the result; wait_for on 3.11 does not."""
    root = Path(__file__).resolve().parents[2]
    offenders = [str(p.relative_to(root)) for d in PRODUCT_DIRS for p in (root / d).rglob("*.py")
                 if "asyncio.wait_for(" in p.read_text()]
    assert offenders == []
