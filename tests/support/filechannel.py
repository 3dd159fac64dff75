"""A minion's file requests answered in process by the master's own command table (the typed load, the
handler, the wire's encoding), without the sockets and sealing: for unit tests of the file client, sync
and `cp` against a real file server."""

from __future__ import annotations

import asyncio
from typing import Callable

from rx.master.context import WorkerContext
from rx.master.filerecv import FileRecv
from rx.master.fileserver import FileServer
from rx.master.handlers import SECURE_COMMANDS
from rx.minion.jobchannel import SYNCED, ChannelError
from rx.transport.codec import decode, encode
from rx.transport.replies import is_error


class DirectChannel:
    """A minion's requests answered by the master's handlers in this process."""

    def __init__(self, fs: FileServer, recv: FileRecv | None = None, minion_id: str = "m1") -> None:
        self.ctx = WorkerContext(identity=None, stores=None, root_key="", settings=None, events=None,  # type: ignore
                                 publisher=None, files=fs, recv=recv)
        self.minion_id = minion_id
        self.sent: list[tuple[str, dict]] = []
        self.synced: list[list[str]] = []
        self.after: dict[str, Callable[[], object]] = {}

    def request(self, cmd: str, load: dict) -> dict:
        self.sent.append((cmd, load))
        if cmd == SYNCED:
            self.synced.append(load["kinds"])
            return {"ok": True}
        load_type, handler = SECURE_COMMANDS[cmd]
        typed = load_type.from_wire(decode(encode(load)))
        reply = decode(encode(asyncio.run(handler(self.ctx, self.minion_id, typed))))
        if cmd in self.after:
            self.after[cmd]()
        if is_error(reply):
            raise ChannelError(f"the master refused it: {reply['error']['message']}")
        return reply

    def count(self, cmd: str) -> int:
        return sum(1 for c, _ in self.sent if c == cmd)
