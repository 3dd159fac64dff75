"""rx.minion.core.Minion without sockets: one publication's handling can never stop the receive loop.
Real keys and frames; the minion is fed frames directly, as its receive loop does."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from rx.config import MinionConfig
from rx.minion.core import Minion
from rx.transport.crypto import Identity
from rx.transport.handshake import Session, publish_key
from rx.transport.messages import Job
from rx.transport.secure import seal_publication

SERIAL = 2


def _minion(tmp_path, master: Identity, secret: bytes) -> Minion:
    m = Minion(MinionConfig(id="web1", cachedir=str(tmp_path)), identity=Identity.generate(), grains={},
               executor=object(), catch_up=False)
    m.gate.use(Session(master_pub=master.public, serial=SERIAL, publish_key=publish_key(secret, SERIAL),
                       request_key=b"r" * 32, master_offset=0.0))
    return m


def _frame(master: Identity, secret: bytes, jid: str, tgt: str, tgt_type: str) -> bytes:
    job = Job(jid=jid, fun="test.ping", arg=[], kwarg={}, tgt=tgt, tgt_type=tgt_type, ts=time.time())
    return seal_publication(master, publish_key(secret, SERIAL), SERIAL, job)


def test_an_unexpected_error_in_one_publication_is_logged_and_the_next_one_is_handled(tmp_path, master, secret,
                                                                                     caplog):
    m = _minion(tmp_path, master, secret)
    started: list[str] = []

    def start(job: Job) -> Any:
        """Stands in for the executor (not under test): starting the first job fails unexpectedly."""
        if not started:
            started.append("failed")
            raise RuntimeError("the process table is full")
        started.append(job.jid)
        return asyncio.sleep(0)
    m.handle_job = start  # type: ignore[method-assign]

    async def feed() -> None:
        await m.on_publication(_frame(master, secret, "20240102030405060701", "web1", "glob"))
        await m.on_publication(_frame(master, secret, "20240102030405060702", "web*", "glob"))
        await asyncio.gather(*m._tasks)
    with caplog.at_level(logging.ERROR, logger="rx.minion"):
        asyncio.run(feed())
    assert started == ["failed", "20240102030405060702"]
    assert "dropped a publication: unexpected error handling it" in caplog.text
    assert "the process table is full" in caplog.text
