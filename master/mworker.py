"""MWorker process: takes requests fair-queued from the request server and answers each.

One server reads both sources (the local socket and the network) into lanes before each turn, and answers
the operator's requests first, then minions' sealed requests (returns, events: the returns at the lane's
head together, stored with one write), then clear ones (`_auth`); clear requests beyond their lane are
answered "busy" at once.  So whatever arrives on the network, an operator's request waits at most for the
requests in hand (a run of small returns and one other request), and a flood of `_auth` delays a minion's
return by at most the requests in hand and the sealed ones before it."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from time import perf_counter

from rx.config import MasterConfig
from rx.master.services.auth import open_auth
from rx.master.autosign import AutoSign
from rx.master.context import DropLog, WorkerContext, WorkerSettings
from rx.master.filerecv import FileRecv, RecvSettings
from rx.master.fileserver import FileServer, file_server_settings
from rx.master.handlers import LOCAL_LANE, dispatch, dispatch_many, network_lane
from rx.master.heard import PRESENCE_FILE, SharedPresence
from rx.master.metrics.process import WorkerMetrics
from rx.master.metrics.shared import metrics_dir
from rx.master.pillar import pillar_service
from rx.master.store import StoreError, open_stores, store_config
from rx.master.store.presence import open_presence
from rx.transport.codec import MAX_FRAME_BYTES, NETWORK_MAX_CLEAR_BYTES, encode
from rx.transport.crypto import load_or_create_identity
from rx.transport.errors import ErrorKind
from rx.transport.jidclock import JID_CLOCK_FILE, JidClock
from rx.transport.replies import ErrorReply
from rx.transport.roles import Handler, Lane, Source, ipc_url, open_transport

log = logging.getLogger(__name__)

FLUSH_SECONDS = 1.0
BATCH_BYTES = 1 << 20
"""Most bytes of sealed requests handled together (a larger one is handled alone): batching pays for small
returns, and a batch of large ones would hold more memory than the one request in hand."""
LANES = (
    Lane(max_requests=16, max_bytes=MAX_FRAME_BYTES),
    Lane(max_requests=64, max_bytes=MAX_FRAME_BYTES, batch=64, batch_bytes=BATCH_BYTES),
    Lane(max_requests=32, max_bytes=32 * NETWORK_MAX_CLEAR_BYTES,
         shed=encode(ErrorReply(ErrorKind.UNAVAILABLE, "the master is busy; retry later").to_wire())),
    Lane(max_requests=0, max_bytes=0, shed=encode(ErrorReply(ErrorKind.BAD_REQUEST, "malformed request").to_wire())),
)
"""The lanes handlers.LOCAL_LANE, SEALED_LANE, CLEAR_LANE and REFUSED: the first two stop the reading of their
source when full (backpressure), a clear request that finds its lane full is answered "busy" at once.  The
sealed lane is handed to `handlers.dispatch_many` whole: its returns are stored with one write (up to the
first request of another command, answered after them)."""


async def run(cfg: MasterConfig, index: int = 0) -> None:
    transport = open_transport()
    stores = open_stores(store_config(cfg))
    server = transport.request_server([Source(ipc_url(cfg.workers_local_ipc), lambda body: LOCAL_LANE),
                                       Source(ipc_url(cfg.workers_ipc), network_lane)], LANES)
    wctx = WorkerContext(
        identity=load_or_create_identity(Path(cfg.pki_dir), "master"), stores=stores,
        root_key=Path(cfg.root_key_path).read_text().strip(),
        settings=WorkerSettings(auto_accept=cfg.auto_accept, auth_window_seconds=cfg.auth_window_seconds,
                                max_pending_keys=cfg.max_pending_keys, publish_port=cfg.publish_port,
                                nodegroups=cfg.nodegroups, private_publish_max=cfg.private_publish_max),
        events=transport.event_sink(ipc_url(cfg.event_pull_ipc)),
        publisher=transport.frame_sink(ipc_url(cfg.publish_pull_ipc)),
        autosign=AutoSign(cfg.autosign_file),
        presence=SharedPresence(os.path.join(cfg.sock_dir, PRESENCE_FILE)),
        connections=open_presence(cfg.sock_dir),
        files=FileServer(file_server_settings(cfg)),
        recv=FileRecv(RecvSettings(cfg.file_recv, int(cfg.file_recv_max_size * 2**20), cfg.minions_dir)),
        jids=JidClock(os.path.join(cfg.cachedir, JID_CLOCK_FILE), cfg.jid_node),
        pillar=pillar_service(cfg),
        metrics=WorkerMetrics(metrics_dir(cfg.sock_dir), f"mworker-{index}"),
        auth=open_auth(cfg, stores),
    )
    log.debug("mworker %d ready", index)
    try:
        handlers = [_handler(wctx, local=lane == "local", index=index, lane=lane) for lane in LANE_NAMES]
        async with asyncio.TaskGroup() as tg:
            tg.create_task(server.serve(handlers))
            tg.create_task(_flush(wctx))
    finally:
        for closeable in (server, wctx.publisher, wctx.events, wctx.files):
            closeable.close()
        stores.close()
        transport.close()


INTERNAL_LOG_INTERVAL = 10.0
"""Seconds between two tracebacks of unexpected errors in one worker (the others are counted)."""


LANE_NAMES = ("local", "sealed", "clear", "clear")
"""The lanes of LANES by their `rx_request_seconds` label (REFUSED requests are answered unread)."""


def _handler(wctx: WorkerContext, *, local: bool, index: int, lane: str = "sealed") -> Handler:
    """Answers requests from one lane (the sealed lane's several at once, the others' one at a time); never
    lets a request end the loop.  Their time goes to the lane's `rx_request_seconds` (a batch's shared out)."""
    internal_log = DropLog(f"mworker {index}: unexpected error handling a request", "failed", level=logging.ERROR,
                           interval=INTERNAL_LOG_INTERVAL, traceback=True)
    observe = wctx.metrics.lanes[lane].observe
    many = lane == "sealed"

    async def handle(bodies: list[list[bytes]]) -> list[bytes]:
        start = perf_counter()
        try:
            replies = await dispatch_many(wctx, bodies) if many else [await dispatch(wctx, bodies[0], local=local)]
        except Exception as exc:
            internal_log(f"{exc.__class__.__name__}: {exc}"[:500])
            replies = [ErrorReply(ErrorKind.INTERNAL, "internal error; see the master log").to_wire()] * len(bodies)
        encoded = [encode(reply) for reply in replies]
        observe((perf_counter() - start) / len(encoded), len(encoded))
        return encoded
    return handle


async def _flush(wctx: WorkerContext) -> None:
    """Once a second, write the job records this worker could not write when it published them, and what it
    counted for /metrics (if that changed)."""
    while True:
        await asyncio.sleep(FLUSH_SECONDS)
        wctx.metrics.flush()
        try:
            await wctx.stores.jobs.flush()
        except (StoreError, OSError):
            pass  # logged when the job was published; tried again in a second


def main(cfg: MasterConfig, index: int) -> None:
    asyncio.run(run(cfg, index))
