"""A client who cannot read the root key reaches the master through its user socket
(`<user_sock_dir>/master_users.sock`, rx.master.usergate): one connection per request, its token (if
any) beside the request, and the kernel tells the master who is asking.

Such a client cannot subscribe to the master's event bus (it is in the 0700 sock_dir), so it reads a
job's returns with `lookup` (PolledReturns: every POLL_MIN seconds, backing off to POLL_MAX while none
come); the master answers only for the user's own jobs.  Before anything (a password, a token) is sent,
the socket and its directory must belong to root or the master's user (rx.pathsafe), so no other local
user can stand in for the master.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import TYPE_CHECKING, Any

from rx.client.results import MasterUnreachable, PermissionDenied
from rx.pathsafe import UnsafePath, check_dir, check_socket
from rx.transport.codec import MAX_FRAME_BYTES, DecodeError, decode, encode
from rx.transport.errors import ProtocolError
from rx.transport.tags import job_ret
from rx.transport.usermsgs import frame, frame_length

if TYPE_CHECKING:
    from rx.client.masterlink import MasterLink

POLL_MIN = 0.1
POLL_MAX = 1.0


class DoorTimeout(MasterUnreachable):
    """The request was sent but no answer came in time: the master may have done it."""


class UserDoor:
    def __init__(self, path: str, owners: set[int]) -> None:
        self.path = path
        self.owners = owners
        self._checked = False

    def check(self) -> None:
        if self._checked:
            return
        if not os.path.exists(self.path):
            raise MasterUnreachable(f"no user socket at {self.path}: the master is not running, or it lets no user "
                                    "but root in (set external_auth or publisher_acl)")
        try:
            check_dir(os.path.dirname(self.path), self.owners, "user_sock_dir")
            check_socket(self.path, self.owners, "user_sock_dir")
        except UnsafePath as exc:
            raise PermissionDenied(f"not talking to it: {exc}") from None
        self._checked = True

    async def request(self, obj: Any, timeout: float) -> Any:
        """The master's answer to one request (sent once)."""
        self.check()
        try:
            reader, writer = await asyncio.open_unix_connection(self.path)
        except OSError as exc:
            raise MasterUnreachable(f"cannot reach the master at {self.path}: {exc.strerror or exc}") from None
        try:
            writer.write(frame(encode(obj)))
            await writer.drain()
            async with asyncio.timeout(timeout):
                head = await reader.readexactly(4)
            async with asyncio.timeout(timeout):
                body = await reader.readexactly(frame_length(head, MAX_FRAME_BYTES))
            return decode(body)
        except TimeoutError:
            raise DoorTimeout(f"the master did not answer within {timeout:g}s") from None
        except (asyncio.IncompleteReadError, ConnectionError):
            raise MasterUnreachable("the master closed the connection (too many requests of yours at once?)") from None
        except (DecodeError, ProtocolError) as exc:
            raise MasterUnreachable(f"unexpected answer from the master: {exc}") from None
        finally:
            writer.close()


class PolledReturns:
    """The returns of one job, read from the master's job store: what the event bus gives a root client
    (an rx.transport.roles.EventSource).  `jid` may be one the master replaced (the client's own jid
    is dropped for users): `link.jid_alias` says which."""

    def __init__(self, link: "MasterLink", jid: str) -> None:
        self.link = link
        self.jid = jid
        self.expected: set[str] | None = None
        self.seen: set[str] = set()
        self.interval = POLL_MIN

    async def batch(self, timeout: float) -> list[tuple[str, dict]]:
        deadline = time.monotonic() + timeout
        while True:
            got = await self._poll()
            left = deadline - time.monotonic()
            if got or left <= 0:
                return got
            await asyncio.sleep(min(self.interval, left))
            self.interval = min(self.interval * 1.5, POLL_MAX)

    async def _poll(self) -> list[tuple[str, dict]]:
        jid = self.link.jid_alias.get(self.jid, self.jid)
        ask = None if self.expected is None else sorted(self.expected - self.seen)
        if ask == []:
            return []
        reply = await self.link.lookup(jid, ask)
        if reply is None:
            return []
        if self.expected is None:
            self.expected = set(reply.minions)
        out = [(job_ret(jid, mid), data) for mid, data in sorted(reply.returns.items()) if mid not in self.seen]
        self.seen.update(reply.returns)
        if out:
            self.interval = POLL_MIN
        return out

    def close(self) -> None:
        pass
