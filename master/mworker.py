"""MWorker process: takes requests fair-queued from the request server and answers each."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import zmq
import zmq.asyncio

from rx.config import MasterConfig
from rx.master.handlers import WorkerContext, dispatch
from rx.master.grainscache import GrainsCache
from rx.master.jobcache import JobCache
from rx.master.keys import KeyStore
from rx.master.session import SessionState
from rx.transport.channels import EventBus, ipc, recv_multipart
from rx.transport.codec import encode
from rx.transport.crypto import load_or_create_identity
from rx.transport.messages import ErrorInfo

log = logging.getLogger(__name__)


async def run(cfg: MasterConfig, index: int = 0) -> None:
    zctx = zmq.asyncio.Context()
    remote = zctx.socket(zmq.REP)
    local = zctx.socket(zmq.REP)
    for sock, path in ((remote, cfg.workers_ipc), (local, cfg.workers_local_ipc)):
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RECONNECT_IVL, 20)  # back within 20 ms of a request-server restart
        sock.connect(ipc(path))
    publish = zctx.socket(zmq.PUSH)
    publish.setsockopt(zmq.LINGER, 2000)
    publish.setsockopt(zmq.SNDHWM, 100_000)
    publish.connect(ipc(cfg.publish_pull_ipc))
    session = SessionState(cfg.pki_dir)
    session.refresh(force=True)
    wctx = WorkerContext(
        identity=load_or_create_identity(Path(cfg.pki_dir), "master"),
        keys=KeyStore(cfg.pki_dir), session=session, jobs=JobCache(cfg.jobs_dir),
        root_key=Path(cfg.root_key_path).read_text().strip(), auto_accept=cfg.auto_accept,
        max_pending_keys=cfg.max_pending_keys,
        auth_window=cfg.auth_window_seconds, events=EventBus(zctx, cfg.event_pull_ipc), publish_sock=publish,
        grains=GrainsCache(cfg.cachedir), nodegroups=cfg.nodegroups,
    )
    log.debug("mworker %d ready", index)
    try:
        await asyncio.gather(_serve(wctx, remote, local=False, index=index), _serve(wctx, local, local=True, index=index))
    finally:
        remote.close(linger=0)
        local.close(linger=0)
        publish.close()
        wctx.events.close()
        zctx.term()


async def _serve(wctx: WorkerContext, sock: zmq.asyncio.Socket, *, local: bool, index: int) -> None:
    """Answer every request on one REP socket, one at a time; never let a request end the loop."""
    while True:
        frames = await recv_multipart(sock)
        try:
            reply = await dispatch(wctx, frames, local=local)
        except Exception:
            log.exception("mworker %d: unexpected error handling a request", index)
            reply = ErrorInfo("internal", "internal error; see the master log").to_wire()
        await sock.send(encode(reply))


def main(cfg: MasterConfig, index: int) -> None:
    asyncio.run(run(cfg, index))
