"""The master on this host as a client reaches it: the sock_dir check, the root key, the event bus
subscription, local-socket requests and what their error answers mean, and `lookup`, the job store
read through the master (a client never opens the master's files).

A client that cannot read the root key is a user who is not root: its requests go through the master's
user socket instead (rx.client.userdoor), with its token (`token=`, else `~/.rx_token`) or, without one,
as the local user the kernel names (publisher_acl); it reads returns with `lookup`.  A root-key holder
given a `token` (rx-api, `rx -a`) acts as that token's user: the master checks that user's rights.

Every request waits for a busy master as long as the processes that hold it run (see
rx.client.masterwatch), up to the client's max_wait: a burst of clients is answered late, not
refused.  A request is sent once (a publish is not idempotent).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import TYPE_CHECKING, Any, Sequence

from rx.client.masterwatch import MasterWatch
from rx.client.results import BadRequest, MasterError, MasterUnreachable, PermissionDenied
from rx.client.userauth import read_token
from rx.config import MasterConfig, load_master_config
from rx.master.services import MasterNotRunning, event_service
from rx.master.services.events import EventService
from rx.pathsafe import UnsafePath, check_dir, check_socket
from rx.transport import messages as m
from rx.transport.errors import ErrorKind, ProtocolError, ReplyError
from rx.transport.messages import ClearRequest, LookupRequest
from rx.transport.replies import Ack, LookupReply, parse_reply
from rx.transport.roles import EventSource, RequestClient, RequestTimeout, Transport, ipc_url
from rx.transport.tags import job_ret_prefix

if TYPE_CHECKING:
    from rx.client.userdoor import UserDoor
    from rx.transport.usermsgs import Token

SYNC_TIMEOUT = 5.0
WATCH_INTERVAL = 1.0
"""While it waits for the master, a client looks this often whether the master still runs."""


class NoAnswer(MasterUnreachable):
    """A request was sent but no answer came: the master may have done it."""


class MasterLink:
    """Talks to the master on this host through its local socket, as the master's user."""

    def __init__(self, config_dir: str | None = None, *, cfg: MasterConfig | None = None,
                 token: str | None = None, source: str = "", events: EventService | None = None) -> None:
        self.cfg = cfg or load_master_config(config_dir)
        self.token = token
        """An eauth token: every request is for its user (None: the root key's holder, or for a client who
        cannot read the root key, `~/.rx_token` if there is one, else the local user)."""
        self.source = source
        """Where a token's requests come from (rx-api: the HTTP client's address), for the audit log."""
        self._req: RequestClient | None = None
        self._events: EventService | None = events
        self._own_events = events is None
        """`events`: a bus (and transport) shared by many clients of one process (rx-api); not closed by aclose."""
        self._checked = False
        self._door: UserDoor | None | bool = False
        self.jid_alias: dict[str, str] = {}
        """The jid a user's client chose -> the one the master gave the job (rx.client.userdoor)."""

    @property
    def door(self) -> UserDoor | None:
        """The user socket, when the root key is there but this client may not read it (None: it may, or
        there is none: the master is not running)."""
        if self._door is False:
            self._door = None
            if _unreadable(self.cfg.root_key_path):
                from rx.client.userdoor import UserDoor  # a user who is not root only: off the root client's path
                self._door = UserDoor(self.cfg.user_socket, _master_owners(self.cfg))
                if self.token is None:
                    self.token = read_token()
        return self._door  # type: ignore[return-value]

    async def aclose(self) -> None:
        if self._req is not None:
            await self._req.aclose()
            self._req = None
        if self._events is not None and self._own_events:
            self._events.close()
            self._events = None

    @property
    def events(self) -> EventService:
        """The master's event bus (and the transport every live request of this client uses)."""
        if self._events is None:
            self._events = event_service(self.cfg)
        return self._events

    def _live(self) -> Transport:
        """The transport to the running master's local socket; MasterUnreachable if it is not running,
        PermissionDenied if another user could have put its own socket there (see rx.pathsafe)."""
        if not os.path.exists(self.cfg.ret_ipc):
            raise MasterUnreachable(f"the master is not running (no socket at {self.cfg.ret_ipc}); "
                                    "start it with: rx-master -d")
        if not self._checked:
            self._check_sock_dir()
            self._checked = True
        return self.events.transport

    def _check_sock_dir(self) -> None:
        """The sock_dir, the directories above it and master_req.ipc belong to the root key's owner (the
        master's user) or root, and no one else can write them: else the root key is not sent."""
        key = self.cfg.root_key_path
        try:
            owners = {0, os.stat(key).st_uid}
            check_dir(self.cfg.sock_dir, owners, "sock_dir")
            check_socket(self.cfg.ret_ipc, owners, "sock_dir")
        except PermissionError:
            raise PermissionDenied(f"cannot read {key}: run as the master's user (or root)") from None
        except FileNotFoundError:
            raise MasterUnreachable(f"no root key at {key}: is the master running?") from None
        except UnsafePath as exc:
            raise PermissionDenied(f"not sending the root key: {exc}") from None

    def _root_key(self) -> str:
        if self.door is not None:
            return ""  # the user socket's relay holds it
        path = self.cfg.root_key_path
        try:
            with open(path) as f:
                return f.read().strip()
        except PermissionError:
            raise PermissionDenied(f"cannot read {path}: run as the master's user (or root)") from None
        except FileNotFoundError:
            raise MasterUnreachable(f"no root key at {path}: is the master running?") from None

    def _patience(self, ceiling: float | None) -> tuple[MasterWatch, float]:
        """How long to wait for the master: up to `ceiling` (default max_wait_seconds) while its processes can be
        watched, else its `timeout`."""
        watch = MasterWatch(self.cfg.pidfile)
        if not watch.visible:
            return watch, self.cfg.timeout
        return watch, max(self.cfg.timeout, self.cfg.max_wait_seconds if ceiling is None else ceiling)

    async def _listen(self, jid: str, ceiling: float | None = None) -> EventSource:
        """Subscribe to the job's returns before publishing it (proven live, so none is lost).  A bus that
        does not answer yet (a busy host, an event publisher being restarted) is tried again while the
        master runs."""
        if self.door is not None:
            from rx.client.userdoor import PolledReturns
            return PolledReturns(self, jid)
        self._live()
        watch, patience = self._patience(ceiling)
        deadline = time.monotonic() + patience
        while True:
            tried = time.monotonic()
            try:
                return await self.events.subscribe((job_ret_prefix(jid),),
                                                   timeout=max(0.001, min(SYNC_TIMEOUT, deadline - tried)))
            except MasterNotRunning as exc:
                why = watch.gone()
                if why or not watch.visible or time.monotonic() >= deadline:
                    raise MasterUnreachable(f"{exc} ({why})" if why else str(exc)) from None
                if time.monotonic() - tried < WATCH_INTERVAL:  # refused at once (no bus socket): not a busy loop
                    await asyncio.sleep(WATCH_INTERVAL / 10)

    async def _request(self, cmd: str, load: dict, ceiling: float | None = None) -> Any:
        """The master's answer.  One request, never sent twice (a publish is not idempotent): a busy master
        is waited for while the processes that may hold the request run (see `_patience`)."""
        if self.door is not None:
            return await self._door_request(cmd, load, ceiling)
        if self.token:
            from rx.transport.usermsgs import Credentials
            load = {**load, "auth": Credentials(token=self.token, source=self.source).to_wire()}
        if self._req is None:
            self._req = self._live().request_client(ipc_url(self.cfg.ret_ipc))
        watch, patience = self._patience(ceiling)
        answer = asyncio.ensure_future(self._req.request(ClearRequest(cmd, load).to_wire(), timeout=patience))
        try:
            while True:
                done, _ = await asyncio.wait({answer}, timeout=WATCH_INTERVAL)
                if done:
                    return answer.result()
                why = watch.lost()
                if why:
                    self._req.reset()
                    raise NoAnswer(f"the master did not answer: {why}")
        except RequestTimeout:
            self._req.reset()
            raise NoAnswer(f"the master did not answer within {patience:g}s") from None
        finally:
            if not answer.done():
                answer.cancel()
                await asyncio.gather(answer, return_exceptions=True)

    async def _door_request(self, cmd: str, load: dict, ceiling: float | None) -> Any:
        from rx.client.userdoor import DoorTimeout
        from rx.transport.usermsgs import UserRequest
        assert self.door is not None
        _watch, patience = self._patience(ceiling)
        try:
            raw = await self.door.request(UserRequest(cmd, load, self.token or "").to_wire(), patience)
        except DoorTimeout as exc:
            raise NoAnswer(str(exc)) from None
        if cmd == m.PUBLISH and load.get("jid") and isinstance(raw, dict) and isinstance(raw.get("jid"), str):
            self.jid_alias[load["jid"]] = raw["jid"]
        return raw

    async def login(self, eauth: str, username: str, password: str) -> Token:
        """A new token from the master (salt-api's login fields); PermissionDenied if refused or locked out."""
        from rx.transport.usermsgs import LOGIN, LoginRequest, Token
        if self.door is not None:
            raw = await self._door_request(LOGIN, LoginRequest(eauth, username, password).to_wire(), None)
            return self._reply(raw, Token)
        from rx.master.services import open_services
        from rx.master.services.auth import AuthError, open_auth
        services = open_services(self.cfg)
        try:
            return await open_auth(self.cfg, services.stores).login(eauth, username, password, source="local")
        except AuthError as exc:
            raise PermissionDenied(str(exc)) from None
        finally:
            services.close()

    async def logout(self, token: str) -> None:
        """Revoke a token (it stops working at once)."""
        from rx.transport.usermsgs import LOGOUT, LogoutRequest
        if self.door is not None:
            self._reply(await self._door_request(LOGOUT, LogoutRequest(token).to_wire(), None), Ack)
            return
        from rx.master.services import open_services
        from rx.master.services.auth import open_auth
        services = open_services(self.cfg)
        try:
            await open_auth(self.cfg, services.stores).revoke(token, source="local")
        finally:
            services.close()

    def _reply(self, raw: Any, expected: type) -> Any:
        """The answer as `expected`, or the ClientError its error answer means."""
        try:
            return parse_reply(raw, expected)
        except ReplyError as exc:
            raise self._error(exc) from None
        except ProtocolError as exc:
            raise MasterUnreachable(f"unexpected answer from the master: {exc}") from None

    def _error(self, exc: ReplyError) -> Exception:
        if exc.kind is ErrorKind.PERMISSION:
            return PermissionDenied(exc.message)
        if exc.kind in (ErrorKind.BAD_REQUEST, ErrorKind.BAD_TARGET, ErrorKind.UNKNOWN_JOB):
            return BadRequest(exc.message)
        if exc.kind in (ErrorKind.INTERNAL, ErrorKind.UNAVAILABLE, ErrorKind.RENDER):
            return MasterError(f"the master failed ({exc.kind.value}): {exc.message}; its log: {self.cfg.log_file} "
                               "(rx-master -d), else its standard error (journalctl -u rx-master under systemd)")
        return MasterUnreachable(f"the master failed ({exc.kind.value}): {exc.message}")

    async def lookup(self, jid: str, ids: Sequence[str] | None = None) -> LookupReply | None:
        """The job's expected minions and its stored returns (`{id: return}`) of the minions in `ids` (of all with
        None), read by the master from its job store, how long ago it last heard from each of `ids` and which
        of them are connected now; None if the store has no such job."""
        returns: dict[str, dict] = {}
        heard: dict[str, float] = {}
        connected: list[str] | None = None
        ask = None if ids is None else list(ids)
        while True:
            raw = await self._request(m.LOOKUP, LookupRequest(self._root_key(), jid, ask).to_wire())
            try:
                reply = parse_reply(raw, LookupReply)
            except ReplyError as exc:
                if exc.kind is ErrorKind.UNKNOWN_JOB:
                    return None
                raise self._error(exc) from None
            except ProtocolError as exc:
                raise MasterUnreachable(f"unexpected answer from the master: {exc}") from None
            returns.update(reply.returns)
            heard.update(reply.heard)
            if connected is None:  # the first page's answer covers every id asked for
                connected = reply.connected
            if not reply.more:
                return LookupReply(reply.minions, reply.no_grains, returns, heard=heard, connected=connected)
            ask = reply.more

    async def _stored(self, jid: str, ids: Sequence[str] | None = None) -> LookupReply:
        """`lookup`, with nothing stored for a job the store does not hold."""
        return await self.lookup(jid, ids) or LookupReply([])


def _unreadable(path: str) -> bool:
    try:
        os.stat(path)
    except PermissionError:
        return True
    except OSError:
        return False
    return not os.access(path, os.R_OK)


def _master_owners(cfg: MasterConfig) -> set[int]:
    """Who may own the user socket: root, the master's `user`, and the root key's owner (the master's user)."""
    owners = {0}
    if cfg.user:
        import pwd
        try:
            owners.add(pwd.getpwnam(cfg.user).pw_uid)
        except KeyError:
            pass
    try:
        owners.add(os.stat(cfg.root_key_path).st_uid)
    except OSError:
        pass
    return owners
