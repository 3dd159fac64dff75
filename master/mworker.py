"""MWorker process: takes requests fair-queued from the request server and answers each.

The network and the local socket are served by separate tasks on one event loop, so the
operator's requests are answered while minions' requests wait on their store."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from rx.config import MasterConfig
from rx.master.autosign import AutoSign
from rx.master.context import WorkerContext, WorkerSettings
from rx.master.handlers import dispatch
from rx.master.store import StoreError, open_stores, store_config
from rx.transport.codec import encode
from rx.transport.crypto import load_or_create_identity
from rx.transport.errors import ErrorKind
from rx.transport.replies import ErrorReply
from rx.transport.roles import RequestServer, ipc_url, open_transport

log = logging.getLogger(__name__)

FLUSH_SECONDS = 1.0


async def run(cfg: MasterConfig, index: int = 0) -> None:
    transport = open_transport()
    stores = open_stores(store_config(cfg))
    remote = transport.request_server(ipc_url(cfg.workers_ipc))
    local = transport.request_server(ipc_url(cfg.workers_local_ipc))
    wctx = WorkerContext(
        identity=load_or_create_identity(Path(cfg.pki_dir), "master"), stores=stores,
        root_key=Path(cfg.root_key_path).read_text().strip(),
        settings=WorkerSettings(auto_accept=cfg.auto_accept, auth_window_seconds=cfg.auth_window_seconds,
                                max_pending_keys=cfg.max_pending_keys, publish_port=cfg.publish_port,
                                nodegroups=cfg.nodegroups, private_publish_max=cfg.private_publish_max),
        events=transport.event_sink(ipc_url(cfg.event_pull_ipc)),
        publisher=transport.frame_sink(ipc_url(cfg.publish_pull_ipc)),
        autosign=AutoSign(cfg.autosign_file),
    )
    log.debug("mworker %d ready", index)
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(_serve(wctx, remote, local=False, index=index))
            tg.create_task(_serve(wctx, local, local=True, index=index))
            tg.create_task(_flush(wctx))
    finally:
        for closeable in (remote, local, wctx.publisher, wctx.events):
            closeable.close()
        stores.close()
        transport.close()


async def _serve(wctx: WorkerContext, server: RequestServer, *, local: bool, index: int) -> None:
    """Answer every request on one source, one at a time; never let a request end the loop."""
    async def handle(frames: list[bytes]) -> bytes:
        try:
            reply = await dispatch(wctx, frames, local=local)
        except Exception:
            log.exception("mworker %d: unexpected error handling a request", index)
            reply = ErrorReply(ErrorKind.INTERNAL, "internal error; see the master log").to_wire()
        return encode(reply)
    await server.serve(handle)


async def _flush(wctx: WorkerContext) -> None:
    """Once a second, write the job records this worker could not write when it published them."""
    while True:
        await asyncio.sleep(FLUSH_SECONDS)
        try:
            await wctx.stores.jobs.flush()
        except (StoreError, OSError):
            pass  # logged when the job was published; tried again in a second


def main(cfg: MasterConfig, index: int) -> None:
    asyncio.run(run(cfg, index))
