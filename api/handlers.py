"""salt-api's core routes: `/` (the welcome answer, the dashboard for a browser, and lowstates), `/login`,
`/logout`, `/token`, `/run` (credentials in each chunk), `/stats`, `/metrics`, `/static/<path>`, and the
404 of every other path.  How a lowstate list runs (checks first, then each chunk in turn, a client error
mapped to its status) is `LowstateHandler.execute`."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

import tornado.web

from rx.api import clients
from rx.api.base import COOKIE, ApiError, BaseHandler, authenticate
from rx.api.lowstate import Credentials, RequestError, chunks, credentials, enabled_check, parse_low
from rx.client.results import BadRequest, ClientError, MasterError, MasterUnreachable, PermissionDenied
from rx.master.services import StoreError, UnknownJob
from rx.master.services.auth import AuthError, LoginLocked, Principal

DASHBOARD_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
                 "form-action 'none'; base-uri 'none'; frame-ancestors 'none'")
"""The dashboard's Content-Security-Policy: its own scripts and styles only (no inline script or style
attribute), connections to rx-api only, no framing (api/static/index.html carries the same in a <meta>)."""

log = logging.getLogger("rx.api")

CREDENTIALS_BYTES = 64 * 1024
"""Bodies of /login, /token and /logout: credentials are small."""


class LowstateHandler(BaseHandler):
    """A handler that runs lowstate chunks for the request's user."""

    _caller: clients.Caller | None = None
    _gone = False

    def initialize(self) -> None:
        super().initialize()
        self._calls: set[asyncio.Future] = set()

    async def caller(self) -> clients.Caller:
        """The request's user (authenticated once per request)."""
        if self._caller is None:
            who = await authenticate(self)
            self._caller = clients.Caller(who, self.rx_token, self.request.remote_ip or "")
        return self._caller

    async def execute(self, data: Any = None, *, client: str | None = None, inline: bool = False) -> list:
        """Every chunk's answer in order (the chunks of `data`, else of the body).  Without `inline`, the
        request's token is the user, checked before the body is read (401 before any 400); with it (/run),
        each chunk's own token or username/password/eauth."""
        session = None if inline else await self.caller()
        if data is None:
            data = await self.decoded()
        try:
            raw = chunks(data)
            lows = [parse_low(chunk, client) for chunk in raw]
            for low in lows:
                enabled_check(low.client, self.ctx.enabled)
        except RequestError as exc:
            raise ApiError(exc.status, exc.message) from None
        self.audit_fields = {"clients": sorted({low.client for low in lows}),
                             "fun": [low.fun if isinstance(low.fun, str) else ",".join(low.fun) for low in lows]}
        out: list = []
        for chunk, low in zip(raw, lows):
            caller, temporary = (session, "") if session is not None else await self.inline_caller(chunk)
            try:
                answer = await guarded(self.unless_gone(clients.run(self.ctx, low, caller)))
            finally:
                if temporary:
                    await self.ctx.auth.revoke(temporary, source=caller.source)
            out.extend(answer) if isinstance(answer, clients.Spread) else out.append(answer)
        return out

    async def unless_gone(self, call: Any) -> Any:
        """Await a chunk's call, stopped when the client goes away: a job's wait or a runner (event.watch)
        keeps nothing running for a client that is gone."""
        task = asyncio.ensure_future(call)
        self._calls.add(task)
        try:
            return await task
        except asyncio.CancelledError:
            if not self._gone:
                raise
            raise ApiError(499, "the client closed the connection before the answer") from None
        finally:
            self._calls.discard(task)

    def on_connection_close(self) -> None:
        self._gone = True
        for task in list(self._calls):
            task.cancel()
        super().on_connection_close()

    async def inline_caller(self, chunk: dict) -> tuple[clients.Caller, str]:
        """The caller a /run chunk names (its token, or a login for this request only: that token is revoked
        after the chunk); ApiError 401/429 if it cannot be authenticated."""
        try:
            creds = credentials(chunk)
        except RequestError as exc:
            raise ApiError(exc.status, exc.message) from None
        source = self.request.remote_ip or ""
        if creds.token:
            try:
                who = await self.ctx.auth.check_token(creds.token, source=source)
            except AuthError as exc:
                raise ApiError(401, str(exc)) from None
            self.rx_principal = who
            return clients.Caller(who, creds.token, source), ""
        if not creds.login:
            raise ApiError(401, "No authentication credentials given: send token, or username, password and eauth")
        token = await login(self, creds)
        self.rx_principal = Principal(token.user, token.eauth, (), source)
        return clients.Caller(self.rx_principal, token.token, source), token.token


async def guarded(coro: Any) -> Any:
    """Await a client call; its errors as ApiErrors with salt-api's status codes."""
    try:
        return await coro
    except RequestError as exc:
        raise ApiError(exc.status, exc.message) from None
    except PermissionDenied as exc:
        raise ApiError(403, str(exc)) from None
    except BadRequest as exc:
        raise ApiError(400, str(exc)) from None
    except MasterUnreachable as exc:
        raise ApiError(503, str(exc)) from None
    except MasterError as exc:
        raise ApiError(502, str(exc)) from None
    except ClientError as exc:
        raise ApiError(400, str(exc)) from None
    except UnknownJob as exc:
        raise ApiError(404, str(exc) or "no such job") from None
    except StoreError as exc:
        raise ApiError(503, f"a store of the master is unavailable: {exc}") from None


async def login(handler: BaseHandler, creds: Credentials) -> Any:
    """A new token for the credentials; ApiError 401 (bad credentials, no rights) or 429 (locked out)."""
    auth, stats = handler.ctx.auth, handler.ctx.stats
    try:
        token = await auth.login(creds.eauth, creds.username, creds.password, source=handler.request.remote_ip or "")
    except LoginLocked as exc:
        stats.logins["locked"] += 1
        raise ApiError(429, str(exc), {"Retry-After": str(max(1, int(exc.until - auth.clock())))}) from None
    except AuthError as exc:
        stats.logins["failed"] += 1
        raise ApiError(401, f"Could not authenticate using provided credentials ({exc})") from None
    stats.logins["ok"] += 1
    return token


class IndexHandler(LowstateHandler):
    async def get(self) -> None:
        """salt-api's welcome (`{"return": "Welcome", "clients": [...]}`: the enabled clients); a browser
        (Accept: text/html) gets the dashboard, api/static/index.html, when it is installed."""
        index = self.ctx.static_dir / "index.html"
        if "text/html" in self.request.headers.get("Accept", "") and index.is_file():
            self.audited = False
            self.set_header("Content-Type", "text/html; charset=utf-8")
            self.set_header("Content-Security-Policy", DASHBOARD_CSP)
            self.set_header("Referrer-Policy", "no-referrer")
            self.finish(await asyncio.to_thread(index.read_bytes))
            return
        self.reply({"return": "Welcome", "clients": sorted(self.ctx.enabled)})

    async def post(self) -> None:
        """A lowstate list, run with the session's token: `{"return": [answer, ...]}`."""
        self.reply({"return": await self.execute()})


class RunHandler(LowstateHandler):
    async def post(self) -> None:
        """A lowstate list whose chunks carry their credentials (no session): `{"return": [answer, ...]}`."""
        self.reply({"return": await self.execute(inline=True)})


class LoginHandler(BaseHandler):
    max_body = CREDENTIALS_BYTES

    def get(self) -> None:
        """salt-api's parked endpoint: logins are POSTs."""
        self.set_header("WWW-Authenticate", "Session")
        self.reply({"status": 200, "return": "Please log in"})

    async def post(self) -> None:
        """Log in: `{"return": [{"token", "expire", "start", "user", "eauth", "perms"}]}`; the token is also in
        the X-Auth-Token header and the session cookie."""
        data = await self.decoded()
        if isinstance(data, list) and len(data) == 1:
            data = data[0]
        if not isinstance(data, dict):
            raise ApiError(400, 'send "username", "password" and "eauth"')
        try:
            creds = credentials(data)
        except RequestError as exc:
            raise ApiError(exc.status, exc.message) from None
        if not (creds.username and creds.eauth and "password" in data):
            raise ApiError(400, 'Require "username", "password", and "eauth" params')
        self.rx_principal = Principal(creds.username, creds.eauth, (), self.request.remote_ip or "")
        token = await login(self, creds)
        self.set_header("X-Auth-Token", token.token)
        self.set_cookie(COOKIE, token.token, expires=token.expire, path="/", httponly=True, samesite="Strict",
                        secure=self.request.protocol == "https")
        self.reply({"return": [token.to_salt()]})


class TokenHandler(BaseHandler):
    max_body = CREDENTIALS_BYTES

    async def post(self) -> None:
        """salt-api's /token (pepper -r): `[{"token", "start", "expire", "name", "eauth"}]`, no session."""
        data = await self.decoded()
        items = data if isinstance(data, list) else [data]
        out = []
        for item in items:
            try:
                creds = credentials(item) if isinstance(item, dict) else Credentials()
            except RequestError as exc:
                raise ApiError(exc.status, exc.message) from None
            if not (creds.username and creds.eauth):
                raise ApiError(400, 'Require "username", "password", and "eauth" params')
            self.rx_principal = Principal(creds.username, creds.eauth, (), self.request.remote_ip or "")
            token = await login(self, creds)
            out.append({"token": token.token, "start": token.start, "expire": token.expire, "name": token.user,
                        "eauth": token.eauth})
        self.reply(out)


class LogoutHandler(BaseHandler):
    max_body = CREDENTIALS_BYTES

    async def post(self) -> None:
        """Revoke the request's token and expire the session cookie."""
        await authenticate(self)
        await self.ctx.auth.revoke(self.rx_token, source=self.request.remote_ip or "")
        self.clear_cookie(COOKIE, path="/")
        self.reply({"return": "Your token has been cleared"})


class StatsHandler(BaseHandler):
    async def get(self) -> None:
        """rx-api's counters (requests, by status and client, logins, bytes); a token unless stats_disable_auth."""
        if not self.ctx.cfg.stats_disable_auth:
            await authenticate(self)
        self.reply({"rx-api": self.ctx.stats.report()})


class MetricsHandler(BaseHandler):
    async def get(self) -> None:
        """The master's Prometheus metrics (docs/metrics.md); a token unless stats_disable_auth."""
        if not self.ctx.cfg.stats_disable_auth:
            await authenticate(self)
        from rx.master.metrics.exposition import CONTENT_TYPE
        self.set_header("Content-Type", CONTENT_TYPE)
        self.finish(await self.ctx.metrics.render())


class NotFoundHandler(BaseHandler):
    async def prepare(self) -> None:
        await super().prepare()
        raise ApiError(404, f"no such resource: {self.request.path[:200]}")


class StaticHandler(tornado.web.StaticFileHandler):
    """The dashboard's files under api/static: no directory listings, no dot files, nothing outside it
    (tornado refuses a path that resolves outside the root; `..` and symbolic links out are 403s/404s)."""

    def set_default_headers(self) -> None:
        self.clear_header("Server")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("X-Frame-Options", "DENY")

    def validate_absolute_path(self, root: str, absolute_path: str) -> str | None:
        try:
            real_root = os.path.realpath(root)
            real = os.path.realpath(absolute_path)
        except ValueError:  # a NUL byte in the path
            raise tornado.web.HTTPError(404) from None
        if not real.startswith(real_root + os.sep) or any(p.startswith(".") for p in
                                                            os.path.relpath(real, real_root).split(os.sep)):
            raise tornado.web.HTTPError(404)
        return super().validate_absolute_path(root, absolute_path)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish({"status": status_code, "return": "no such file" if status_code == 404 else "refused"})
