"""A job's returns fired together travel the master's bus as one message (rx.transport.tags.batch_prefix);
every subscriber still gets exactly the events whose tags start with what it asked for, one by one, in the
order fired: also one that asked for part of the returns (`rx/job/<jid>/ret/web`).  A real master's bus."""

from __future__ import annotations

import asyncio
import time

import zmq

from rx.transport.codec import decode
from rx.transport.roles import ipc_url, open_transport

FIRED = [("rx/job/J1/ret/web1", {"id": "web1", "return": 1}), ("rx/job/J1/ret/db1", {"id": "db1", "return": 2}),
         ("rx/job/J2/ret/web1", {"id": "web1", "return": 3}), ("rx/auth", {"id": "web1", "status": "accepted"}),
         ("rx/job/J1/ret/web2", {"id": "web2", "return": 4}), ("rx/job/J3/ret/x", {"id": "x", "return": None})]
PREFIXES = ["rx/job/J1/ret/", "rx/job/", "rx/job/J1/ret/web", "rx/job/J1/ret/db1", "rx/job/J1/ret", "rx/auth", "rx/"]


def test_every_subscriber_gets_each_event_it_asked_for(sandbox):
    sandbox.start_master()
    cfg = sandbox.cfg

    raw = zmq.Context()
    wire = raw.socket(zmq.SUB)
    wire.setsockopt(zmq.SUBSCRIBE, b"rx/job/J1/")
    wire.connect(ipc_url(cfg.event_pub_ipc))

    async def run() -> dict[str, list[tuple[str, dict]]]:
        transport = open_transport()
        try:
            sources = {p: await transport.event_source(ipc_url(cfg.event_pub_ipc), ipc_url(cfg.event_pull_ipc), [p])
                       for p in PREFIXES}
            sink = transport.event_sink(ipc_url(cfg.event_pull_ipc))
            await sink.fire_many(FIRED)
            await sink.fire("rx/job/J1/ret/web9", {"id": "web9", "return": "alone"})
            got: dict[str, list] = {p: [] for p in PREFIXES}
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and any(len(got[p]) < len(_expected(p)) for p in PREFIXES):
                for p, source in sources.items():
                    got[p] += await source.batch(0.05)
            await asyncio.sleep(0.2)  # and nothing more comes
            for p, source in sources.items():
                got[p] += await source.batch(0.05)
                source.close()
            sink.close()
            return got
        finally:
            transport.close()
    try:
        got = asyncio.run(run())
        messages = []
        while wire.poll(500):
            messages.append(wire.recv_multipart())
    finally:
        wire.close(linger=0)
        raw.term()
    # on the wire: J1's three returns fired together are one message, the one fired alone another
    assert [m[0] for m in messages] == [b"rx/job/J1/ret/", b"rx/job/J1/ret/web9"]
    assert len(messages[0]) == 3 and messages[0][1] == b"3" and decode(messages[0][2])[0::2] == ["web1", "db1", "web2"]
    for p in PREFIXES:
        expected = _expected(p)
        assert sorted(got[p]) == sorted(expected), p
        for jid in ("J1", "J2", "J3"):  # in the order fired within a job
            assert [t for t, _d in got[p] if f"/{jid}/" in t] == [t for t, _d in expected if f"/{jid}/" in t], p


def _expected(prefix: str) -> list[tuple[str, dict]]:
    return [(t, d) for t, d in [*FIRED, ("rx/job/J1/ret/web9", {"id": "web9", "return": "alone"})]
            if t.startswith(prefix)]
