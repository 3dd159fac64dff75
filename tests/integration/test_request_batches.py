"""A worker's request server hands a lane's requests to its handler in batches (transport.roles.Lane.batch,
batch_bytes): never more than the lane's batch, never more bytes than batch_bytes unless one request alone is
larger, and a request the handler did not answer is handed over again, first, in the next call.  Real zmq
sockets on IPC: a DEALER bound where a request router's worker end would be."""

from __future__ import annotations

import asyncio

import zmq
import zmq.asyncio

from rx.transport.roles import Lane, Source, ipc_url, open_transport

SIZES = [100, 300, 2000, 100, 100, 100, 700, 50, 5000, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10]


async def test_batches_are_bounded_and_unanswered_requests_come_back_first(tmp_path):
    url = ipc_url(str(tmp_path / "workers.ipc"))
    ctx = zmq.asyncio.Context()
    router_end = ctx.socket(zmq.DEALER)
    router_end.bind(url)
    transport = open_transport()
    server = transport.request_server([Source(url, lambda body: 0)], [Lane(64, 1 << 24, batch=4, batch_bytes=1000)])
    batches: list[list[bytes]] = []
    answered: list[bytes] = []

    async def handle(bodies: list[list[bytes]]) -> list[bytes]:
        batches.append([b[0] for b in bodies])
        if len(batches) == 1:
            await asyncio.sleep(0.3)  # meanwhile the worker's socket fills up
        done = bodies[:max(1, len(bodies) - 1)]  # leave the last one of a batch for the next call
        answered.extend(b[0] for b in done)
        return [b"re:" + b[0][:8] for b in done]

    bodies = [f"{i:04d}".encode() + b"x" * (size - 4) for i, size in enumerate(SIZES)]
    serving = asyncio.get_running_loop().create_task(server.serve([handle]))
    try:
        for body in bodies:
            await router_end.send_multipart([b"peer", b"", body])
        replies = [await asyncio.wait_for(router_end.recv_multipart(), 10) for _ in bodies]
    finally:
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)
        server.close()
        router_end.close(linger=0)
        ctx.term()
        transport.close()
    assert answered == bodies  # each once, in the order sent
    assert sorted(r[2] for r in replies) == sorted(b"re:" + b[:8] for b in bodies)
    assert all(r[:2] == [b"peer", b""] for r in replies)
    assert max(map(len, batches)) >= 2  # the 2-3 requests the worker's socket holds (WORKER_HWM) at least
    for batch in batches:
        assert 1 <= len(batch) <= 4
        assert len(batch) == 1 or sum(map(len, batch)) <= 1000, [len(b) for b in batch]
