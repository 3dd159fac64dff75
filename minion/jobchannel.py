"""How a job's process talks to the master: through the minion process, over a socketpair made for
that one job.

A job runs in a child process forked from the minion.  It does not open a connection of its own to
the master: the minion process relays the job's requests through its own link (`MasterLink.exchange`:
sealed under the session key, re-authenticating and retrying as for its own requests), so the session
key is used by one process, one re-authentication serves every job, and the job's requests are limited
to the file server's commands (`JOB_COMMANDS`).  The socketpair has no name in the filesystem: only the
job's process (and children it forks, not programs it execs: the descriptor is close-on-exec) holds
the other end; the minion closes every other job's end in each new job process.

Frames are a 4-byte big-endian length and a msgpack map: job -> minion `{cmd, load}`, minion -> job
`{reply}` (the master's plaintext reply) or `{error}` (why there is none).  `_synced` is answered by the
minion process itself: a job that synced modules or grains tells it so (`on_synced`).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from dataclasses import replace
from typing import Any, Callable, Protocol

from rx.modules import ExecContext
from rx.transport.codec import DecodeError, decode, encode
from rx.transport.filemsgs import FILE_COMMANDS, MAX_CHUNK

log = logging.getLogger("rx.minion")

SYNCED = "_synced"
"""Local command: a job synced these kinds (`{"kinds": ["modules"]}`); the minion reloads them."""
SYNC_KINDS = ("modules", "grains")
JOB_COMMANDS = frozenset(FILE_COMMANDS) | {SYNCED}
MAX_REQUEST_FRAME = MAX_CHUNK + 64 * 1024
MAX_REPLY_FRAME = 16 * 1024 * 1024
_HEAD = struct.Struct(">I")


class ChannelError(Exception):
    """The request got no reply from the master: the message says why."""


class Channel(Protocol):
    """What the file client needs: one request, one reply (blocking; from a job or a thread)."""

    def request(self, cmd: str, load: dict) -> dict: ...


def _frame(obj: Any) -> bytes:
    body = encode(obj)
    return _HEAD.pack(len(body)) + body


# ---------------------------------------------------------------- in the job's process

class PipeChannel:
    """The job's end: blocking requests to the minion process."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        sock.setblocking(True)

    def request(self, cmd: str, load: dict) -> dict:
        try:
            self.sock.sendall(_frame({"cmd": cmd, "load": load}))
            (size,) = _HEAD.unpack(self._read(_HEAD.size))
            if size > MAX_REPLY_FRAME:
                raise ChannelError(f"the minion sent a {size}-byte reply (limit {MAX_REPLY_FRAME})")
            answer = decode(self._read(size))
        except (OSError, DecodeError) as exc:
            raise ChannelError(f"lost the minion process's channel: {exc}") from None
        if not isinstance(answer, dict) or not isinstance(answer.get("reply", answer.get("error")), (dict, str)):
            raise ChannelError("the minion process sent a malformed answer")
        if "error" in answer:
            raise ChannelError(str(answer["error"]))
        return answer["reply"]

    def _read(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(min(n - len(buf), 1 << 20))
            if not chunk:
                raise ConnectionResetError("the minion closed the channel")
            buf += chunk
        return bytes(buf)


# ---------------------------------------------------------------- in the minion process

Exchange = Callable[[str, dict], Any]
"""`MasterLink.exchange`: (cmd, load) -> awaitable Outcome (status, reply, reason)."""


async def relay(exchange: Exchange, cmd: str, load: dict, on_synced: Callable[[list[str]], None]) -> dict:
    """One request of a job (or of the minion's own file client), as the answer map it gets."""
    if cmd not in JOB_COMMANDS or not isinstance(load, dict):
        return {"error": f"a job may not send {str(cmd)[:64]!r} to the master"}
    if cmd == SYNCED:
        kinds = load.get("kinds")
        on_synced([k for k in kinds if k in SYNC_KINDS] if isinstance(kinds, list) else [])
        return {"reply": {"ok": True}}
    outcome = await exchange(cmd, load)
    if outcome.reply is not None:
        return {"reply": outcome.reply}
    return {"error": f"the master {outcome.status.value} it: {outcome.reason}" if outcome.reason
            else f"the master {outcome.status.value} it"}


class JobChannels:
    """The minion's side: a socketpair for each job, served while the job runs.  `client` makes a job's file
    client from its channel (`ExecContext.files`)."""

    def __init__(self, exchange: Exchange, on_synced: Callable[[list[str]], None],
                 client: Callable[[Channel], Any]) -> None:
        self.exchange = exchange
        self.on_synced = on_synced
        self.client = client

    def job_context(self, ctx: ExecContext, sock: socket.socket) -> ExecContext:
        """In the job's process: its context, with a file client on its end of the channel."""
        return replace(ctx, files=self.client(PipeChannel(sock)))

    @staticmethod
    def pair() -> tuple[socket.socket, socket.socket]:
        """(minion's end, job's end)."""
        return socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)

    async def serve(self, jid: str, sock: socket.socket) -> None:
        """Answer the job's requests until it closes its end (or this task is cancelled)."""
        sock.setblocking(False)
        reader, writer = await asyncio.open_unix_connection(sock=sock, limit=MAX_REQUEST_FRAME)
        try:
            while True:
                try:
                    (size,) = _HEAD.unpack(await reader.readexactly(_HEAD.size))
                    if size > MAX_REQUEST_FRAME:
                        log.warning("job %s sent a %d-byte request (limit %d): closing its channel", jid, size,
                                    MAX_REQUEST_FRAME)
                        return
                    body = await reader.readexactly(size)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                try:
                    msg = decode(body)
                    cmd, load = msg["cmd"], msg["load"]
                except (DecodeError, TypeError, KeyError):
                    answer: dict = {"error": "malformed request on the job channel"}
                else:
                    answer = await relay(self.exchange, cmd, load, self.on_synced)
                writer.write(_frame(answer))
                await writer.drain()
        finally:
            writer.close()


class LinkChannel:
    """The minion process's own file client (sync on start), run in a thread: its requests go through
    the link on the minion's event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, exchange: Exchange,
                 on_synced: Callable[[list[str]], None]) -> None:
        self.loop = loop
        self.exchange = exchange
        self.on_synced = on_synced

    def request(self, cmd: str, load: dict) -> dict:
        answer = asyncio.run_coroutine_threadsafe(relay(self.exchange, cmd, load, self.on_synced), self.loop).result()
        if "error" in answer:
            raise ChannelError(answer["error"])
        return answer["reply"]
