"""MWorker process: takes requests fair-queued from the request server and answers each.

The network and the local socket are served by separate tasks on one event loop that yield after
every request, so the operator's requests are answered within about one network request's time,
whatever arrives on the network.  Network requests wait in two lanes: sealed ones (minions'
returns, events) are served before clear ones (`_auth`), and clear ones beyond their lane are
answered "busy" at once, so a flood of `_auth` delays a return by at most the request in hand."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from rx.config import MasterConfig
from rx.master.context import DropLog, WorkerContext, WorkerSettings
from rx.master.handlers import dispatch, network_lane
from rx.master.store import open_stores, store_config
from rx.transport.codec import MAX_FRAME_BYTES, NETWORK_MAX_CLEAR_BYTES, encode
from rx.transport.crypto import load_or_create_identity
from rx.transport.errors import ErrorKind
from rx.transport.replies import ErrorReply
from rx.transport.roles import Lane, RequestServer, ipc_url, open_transport

log = logging.getLogger(__name__)

NETWORK_LANES = (
    Lane(max_requests=64, max_bytes=MAX_FRAME_BYTES),
    Lane(max_requests=32, max_bytes=32 * NETWORK_MAX_CLEAR_BYTES,
         shed=encode(ErrorReply(ErrorKind.UNAVAILABLE, "the master is busy; retry later").to_wire())),
    Lane(max_requests=0, max_bytes=0, shed=encode(ErrorReply(ErrorKind.BAD_REQUEST, "malformed request").to_wire())),
)
"""Indexed by handlers.SEALED_LANE (served first; when full, the worker stops reading: backpressure),
CLEAR_LANE (then; when full, a new one is answered "busy" at once) and REFUSED (answered at once)."""
LOCAL_LANES = (Lane(max_requests=16, max_bytes=MAX_FRAME_BYTES),)


async def run(cfg: MasterConfig, index: int = 0) -> None:
    transport = open_transport()
    stores = open_stores(store_config(cfg))
    remote = transport.request_server(ipc_url(cfg.workers_ipc), NETWORK_LANES, network_lane)
    local = transport.request_server(ipc_url(cfg.workers_local_ipc), LOCAL_LANES)
    wctx = WorkerContext(
        identity=load_or_create_identity(Path(cfg.pki_dir), "master"), stores=stores,
        root_key=Path(cfg.root_key_path).read_text().strip(),
        settings=WorkerSettings(auto_accept=cfg.auto_accept, auth_window_seconds=cfg.auth_window_seconds,
                                max_pending_keys=cfg.max_pending_keys, publish_port=cfg.publish_port,
                                nodegroups=cfg.nodegroups),
        events=transport.event_sink(ipc_url(cfg.event_pull_ipc)),
        publisher=transport.frame_sink(ipc_url(cfg.publish_pull_ipc)),
    )
    log.debug("mworker %d ready", index)
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(_serve(wctx, remote, local=False, index=index))
            tg.create_task(_serve(wctx, local, local=True, index=index))
    finally:
        for closeable in (remote, local, wctx.publisher, wctx.events):
            closeable.close()
        stores.close()
        transport.close()


INTERNAL_LOG_INTERVAL = 10.0
"""Seconds between two tracebacks of unexpected errors in one worker (the others are counted)."""


async def _serve(wctx: WorkerContext, server: RequestServer, *, local: bool, index: int) -> None:
    """Answer every request on one source, one at a time; never let a request end the loop."""
    internal_log = DropLog(f"mworker {index}: unexpected error handling a request", logging.ERROR,
                           INTERNAL_LOG_INTERVAL, traceback=True)

    async def handle(frames: list[bytes]) -> bytes:
        try:
            reply = await dispatch(wctx, frames, local=local)
        except Exception as exc:
            internal_log(f"{exc.__class__.__name__}: {exc}"[:500])
            reply = ErrorReply(ErrorKind.INTERNAL, "internal error; see the master log").to_wire()
        return encode(reply)
    await server.serve(handle)


def main(cfg: MasterConfig, index: int) -> None:
    asyncio.run(run(cfg, index))
