"""The user socket (`<user_sock_dir>/master_users.sock`): how local users who are not root reach the
master.  A child of rx-master (`rx-usergate`), run only when `external_auth` or `publisher_acl` is set.

The master's own local socket stays in the 0700 sock_dir and takes only the root key.  This one is 0666
in a 0755 directory, and it is a plain Unix stream socket, so the kernel says who connected
(SO_PEERCRED).  Each request (rx.transport.usermsgs: a 4-byte length, one msgpack document, at most
MAX_USER_REQUEST bytes, read within READ_SECONDS) is one of:

- `login` (eauth, username, password): the auth service checks it here, in a thread, with its rate
  limits (source `uid:N`), and answers a token (salt-api's login fields);
- `logout` (token): revokes it;
- `publish`, `preview`, `lookup`: relayed to the workers through the local socket with the root key, the
  caller's token and the caller as the kernel names them (`peer_user`, `peer_uid`): the worker decides
  (rx.master.access, AuthService.authorize_publish), so this relay grants nothing itself.  A uid with no
  user name may only use a token.

At most MAX_CONNECTIONS connections at once (more are closed at once), of which PER_UID per user are
served at a time (the others wait up to READ_SECONDS for their turn).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pwd
import socket
import struct
from pathlib import Path

from rx.config import ConfigError, MasterConfig
from rx.master.context import DropLog
from rx.master.services.auth import AuthError, open_auth
from rx.master.store import open_stores, store_config
from rx.transport.codec import DecodeError, decode, encode
from rx.transport.crypto import ensure_private_dir
from rx.transport.errors import ErrorKind, ProtocolError
from rx.transport.messages import PUBLISH, ClearRequest
from rx.transport.replies import Ack, ErrorReply
from rx.transport.roles import RequestTimeout, ipc_url, open_transport
from rx.transport.usermsgs import (LOGIN, LOGOUT, MAX_USER_OBJECTS, MAX_USER_REQUEST, Credentials, LoginRequest,
                                   LogoutRequest, UserRequest, frame, frame_length)

log = logging.getLogger(__name__)
_failed = DropLog("user socket: a request failed", "failed", level=logging.ERROR, interval=10.0, traceback=True)

MAX_CONNECTIONS = 64
PER_UID = 8
READ_SECONDS = 10.0
_PEERCRED = struct.Struct("3i")


def prepare_users(cfg: MasterConfig) -> None:
    """Before the children start (as root, when rx-master starts as root): the token directory (0700), the
    audit log, and, when users are enabled, the user socket's directory (0755); all given to `user`.
    ConfigError naming the setting when one cannot be made."""
    steps = [("token_dir", cfg.token_dir, lambda: ensure_private_dir(Path(cfg.token_dir))),
             ("audit_log_file", cfg.audit_log_file, lambda: _touch(cfg.audit_log_file))]
    if cfg.users_enabled:
        steps.append(("user_sock_dir", cfg.user_sock_dir, lambda: _public_dir(cfg.user_sock_dir)))
    owner = pwd.getpwnam(cfg.user) if cfg.user and os.geteuid() == 0 else None
    for key, path, make in steps:
        try:
            make()
            if owner is not None:
                os.chown(path, owner.pw_uid, owner.pw_gid)
        except OSError as exc:
            raise ConfigError(f"{key}: {path!r} is not usable: {exc.strerror or exc}", key=key) from None
    remove_socket(cfg)


def _touch(path: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640))


def _public_dir(path: str) -> None:
    Path(path).mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o755)


def remove_socket(cfg: MasterConfig) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(cfg.user_socket)


def _error(kind: ErrorKind, message: str) -> dict:
    return ErrorReply(kind, message).to_wire()


class UserGate:
    def __init__(self, cfg: MasterConfig) -> None:
        self.cfg = cfg
        self.root_key = Path(cfg.root_key_path).read_text().strip()
        self.transport = open_transport()
        self.workers = self.transport.request_client(ipc_url(cfg.ret_ipc))
        self.stores = open_stores(store_config(cfg))
        self.auth = open_auth(cfg, self.stores)
        self.open = 0
        self.per_uid: dict[int, asyncio.Semaphore] = {}

    async def serve(self) -> None:
        remove_socket(self.cfg)
        server = await asyncio.start_unix_server(self._connection, path=self.cfg.user_socket)
        os.chmod(self.cfg.user_socket, 0o666)
        log.info("user socket %s ready", self.cfg.user_socket)
        async with server:
            await server.serve_forever()

    def close(self) -> None:
        self.stores.close()
        self.transport.close()
        if self.auth.audit_log is not None:
            self.auth.audit_log.close()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        _pid, uid, _gid = _PEERCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size))
        if self.open >= MAX_CONNECTIONS:
            writer.close()
            return
        self.open += 1
        slot = self.per_uid.setdefault(uid, asyncio.Semaphore(PER_UID))
        try:
            async with asyncio.timeout(READ_SECONDS):  # a user's requests beyond PER_UID wait their turn
                await slot.acquire()
            try:
                await self._serve(reader, writer, uid)
            finally:
                slot.release()
        except (asyncio.IncompleteReadError, TimeoutError, ProtocolError, ConnectionError):
            pass
        finally:
            self.open -= 1
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, uid: int) -> None:
        while True:
            async with asyncio.timeout(READ_SECONDS):
                head = await reader.readexactly(4)
                body = await reader.readexactly(frame_length(head, MAX_USER_REQUEST))
            try:
                reply = await self._answer(body, uid)
            except Exception as exc:  # a store fault, a back end's bug: answered, logged, the relay goes on
                _failed(f"uid {uid}: {type(exc).__name__}: {exc}"[:500])
                reply = _error(ErrorKind.INTERNAL, f"the master failed ({type(exc).__name__}); see its log")
            writer.write(frame(encode(reply)))
            await writer.drain()

    async def _answer(self, body: bytes, uid: int) -> dict:
        try:
            req = UserRequest.from_wire(decode(body, max_bytes=MAX_USER_REQUEST, max_objects=MAX_USER_OBJECTS))
        except (DecodeError, ProtocolError) as exc:
            return _error(ErrorKind.BAD_REQUEST, f"malformed request: {exc}")
        source = f"uid:{uid}"
        try:
            if req.cmd == LOGIN:
                login = LoginRequest.from_wire(req.load)
                return (await self.auth.login(login.eauth, login.username, login.password, source=source)).to_wire()
            if req.cmd == LOGOUT:
                await self.auth.revoke(LogoutRequest.from_wire(req.load).token, source=source)
                return Ack().to_wire()
        except ProtocolError as exc:
            return _error(ErrorKind.BAD_REQUEST, str(exc))
        except AuthError as exc:  # failed, locked out, no rights
            return _error(ErrorKind.PERMISSION, str(exc))
        name = _user_name(uid)
        if name is None and not req.token:
            return _error(ErrorKind.PERMISSION, f"uid {uid} has no user name on this host: log in with a token")
        load = {**req.load, "key": self.root_key, "auth": Credentials(req.token, name or source, uid, source).to_wire()}
        if req.cmd == PUBLISH:
            load.pop("jid", None)  # a user never picks a jid (nor takes one another client will): the master does
        try:
            return await self.workers.request(ClearRequest(req.cmd, load).to_wire(),
                                              timeout=max(self.cfg.timeout, self.cfg.max_wait_seconds))
        except RequestTimeout:
            self.workers.reset()
            return _error(ErrorKind.UNAVAILABLE, "the master did not answer in time; retry later")


def _user_name(uid: int) -> str | None:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


async def run(cfg: MasterConfig) -> None:
    gate = UserGate(cfg)
    try:
        await gate.serve()
    finally:
        gate.close()


def main(cfg: MasterConfig) -> None:
    asyncio.run(run(cfg))
