"""The file server's sealed commands from minions: `_file_list`, `_file_hash` (stat), `_serve_file`
(one chunk) and `_file_recv` (one chunk of a pushed file).  The minion id is the one the request's key
proved; the loads were parsed (and their paths cleaned) by `transport.filemsgs` before these run.
Each request does bounded work: one chunk, or a list whose hashing past a budget goes to a thread."""

from __future__ import annotations

import logging
from typing import Any, Callable

from rx.master.context import DropLog, WorkerContext, error
from rx.master.filerecv import PushRefused
from rx.master.fileserver import FileServer, FileServerError
from rx.transport.errors import ErrorKind
from rx.transport.filemsgs import ChunkRequest, FileListRequest, FileStatRequest, PushRequest

log = logging.getLogger("rx.master.fileserver")
refused_log = DropLog("refused a file request", "refused", level=logging.WARNING)


def _no_server() -> dict:
    return error(ErrorKind.UNAVAILABLE, "the master's file server is not running")


def _serve(ctx: WorkerContext, minion_id: str, ask: Callable[[FileServer], Any]) -> dict:
    """The file server's answer, or a clear error (an unknown environment, too many files), logged."""
    if ctx.files is None:
        return _no_server()
    try:
        return ask(ctx.files).to_wire()
    except FileServerError as exc:
        refused_log(f"{minion_id}: {exc}")
        return error(ErrorKind.BAD_REQUEST, str(exc))


async def handle_file_list(ctx: WorkerContext, minion_id: str, req: FileListRequest) -> dict:
    return _serve(ctx, minion_id, lambda fs: fs.list(req.saltenv, req.prefix))


async def handle_file_stat(ctx: WorkerContext, minion_id: str, req: FileStatRequest) -> dict:
    return _serve(ctx, minion_id, lambda fs: fs.stat(req.saltenv, req.path))


async def handle_serve_file(ctx: WorkerContext, minion_id: str, req: ChunkRequest) -> dict:
    return _serve(ctx, minion_id, lambda fs: fs.read(req.saltenv, req.path, req.offset, req.size, req.expect_size,
                                                     req.expect_mtime_ns))


async def handle_file_recv(ctx: WorkerContext, minion_id: str, req: PushRequest) -> dict:
    if ctx.recv is None:
        return _no_server()
    try:
        reply = ctx.recv.receive(minion_id, req)
    except PushRefused as exc:
        refused_log(f"push from {minion_id}: {exc}")
        return error(ErrorKind.PERMISSION, str(exc))
    if reply.done:
        log.info("stored %s pushed by %s (%d bytes)", req.path, minion_id, reply.received)
    return reply.to_wire()
