"""What every rx-api request goes through: the body (read as it streams in, bounded), the token (one check,
`authenticate`), the CSRF rule for the session cookie, CORS, Salt-shaped answers and errors, and one line in
the audit log per request.

**Tokens** come from the `X-Auth-Token` header, `Authorization: Bearer`, the `session_id` cookie /login sets,
or (GET only, for EventSource, which cannot set headers) a `?token=` query argument.  **CSRF**: a request
authenticated by the cookie alone that is not a GET, HEAD or OPTIONS must carry an `X-Requested-With`
header (any value: a cross-site form cannot send one, and a cross-site script cannot without a CORS
preflight rx-api refuses unless `api_cors_origins` names its site), and any cookie-authenticated request
that names an `Origin` must come from this site or an allowed one.  The cookie is HttpOnly and
SameSite=Strict (Secure under TLS).  **Errors** are `{"status": code, "return": message}` (salt-api's JSON
error shape), never a stack trace.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import tornado.web
import yaml

from rx.api.context import ApiContext
from rx.api.events.handlers import redact_uri
from rx.api.jsontext import dumps
from rx.api.lowstate import TOKEN_RE, RequestError, decode_body, parse_inline
from rx.master.services.auth import AuthError, Principal

log = logging.getLogger("rx.api")

COOKIE = "session_id"
"""salt-api's session cookie name (it holds the token)."""
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
CORS_HEADERS = "Content-Type, X-Auth-Token, X-Requested-With, Authorization, Last-Event-ID"
DECODERS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="rx-api-decode")
"""Where bodies too big to parse on the event loop are parsed (rx.api.lowstate.parse_inline): two threads at
most, so bodies sent before any login neither starve the loop of the GIL nor hold the default executor's
threads (logins check passwords there)."""
CHUNK_SLACK = 1024 * 1024
"""How far past max_request_body_size tornado's own check sits (a chunk declared larger than this is its 400)."""
ANONYMOUS = Principal("-", "-")
"""Who an unauthenticated request is in the audit log."""


class ApiError(tornado.web.HTTPError):
    """A refusal with its status and a message for the caller (rendered as `{"status", "return"}`)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(status, reason=None)
        self.message = message
        self.headers = headers or {}


def context_of(handler: tornado.web.RequestHandler) -> ApiContext:
    return handler.application.settings["rx_api"]


def _token_of(handler: tornado.web.RequestHandler) -> tuple[str, str]:
    """(token, where it came from: header, cookie or query), ("", "") when there is none."""
    header = handler.request.headers.get("X-Auth-Token", "")
    if not header:
        scheme, _, value = handler.request.headers.get("Authorization", "").partition(" ")
        header = value.strip() if scheme.lower() == "bearer" else ""
    if header:
        return header, "header"
    cookie = handler.get_cookie(COOKIE, "")
    if cookie:
        return cookie, "cookie"
    if handler.request.method in ("GET", "HEAD"):
        query = handler.get_query_argument("token", "")
        if query:
            return query, "query"
    return "", ""


def _same_site(handler: tornado.web.RequestHandler, origin: str) -> bool:
    ctx = context_of(handler)
    return urlsplit(origin).netloc.lower() == handler.request.host.lower() or origin in ctx.cfg.api_cors_origins


async def authenticate(handler: tornado.web.RequestHandler) -> Principal:
    """The user a request is for, from its token (header, cookie, or `?token=` on a GET); ApiError 401 for a
    missing, malformed, unknown, expired or revoked token, 403 for a cookie request the CSRF rule refuses.
    Sets `handler.rx_token` and `handler.rx_principal` (the audit line names the user)."""
    token, where = _token_of(handler)
    if not token:
        raise ApiError(401, "Please log in: send the token from POST /login in the X-Auth-Token header")
    if not TOKEN_RE.fullmatch(token):
        raise ApiError(401, "invalid token")
    if where == "cookie":
        origin = handler.request.headers.get("Origin", "")
        if origin and not _same_site(handler, origin):
            raise ApiError(403, f"cross-site request refused (Origin {origin[:100]}); use the X-Auth-Token header")
        if handler.request.method not in SAFE_METHODS and not handler.request.headers.get("X-Requested-With"):
            raise ApiError(403, "a request authenticated by the session cookie must send an X-Requested-With "
                                "header (CSRF protection), or use the X-Auth-Token header")
    ctx = context_of(handler)
    try:
        who = await ctx.auth.check_token(token, source=handler.request.remote_ip or "")
    except AuthError as exc:
        raise ApiError(401, str(exc)) from None
    handler.rx_token = token  # type: ignore[attr-defined]
    handler.rx_principal = who  # type: ignore[attr-defined]
    return who


@tornado.web.stream_request_body
class BaseHandler(tornado.web.RequestHandler):
    """Body bounded by `max_request_body_size` (413 beyond it, from its Content-Length or as it streams),
    answers in JSON (or YAML when asked), errors in salt-api's shape, an audit line when it ends."""

    audited = True
    max_body: int | None = None
    """A tighter bound than max_request_body_size for this route (logins: credentials are small)."""

    def initialize(self) -> None:
        self.ctx: ApiContext = context_of(self)
        self.body = bytearray()
        self.rx_token = ""
        self.rx_principal: Principal | None = None
        self.audit_fields: dict[str, Any] = {}
        self.error_message = ""
        self._too_big = False

    # ------------------------------------------------------------ request

    def set_default_headers(self) -> None:
        self.clear_header("Server")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Frame-Options", "DENY")
        self.set_header("Referrer-Policy", "no-referrer")

    async def prepare(self) -> None:
        self.ctx.stats.requests += 1
        self.ctx.stats.current += 1
        self._cors()
        limit = self.body_limit
        length = self.request.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > limit:
            self._too_big = True
            raise ApiError(413, f"the request body is {int(length)} bytes; the limit is {limit}"
                                + (" (max_request_body_size)" if limit == self.ctx.cfg.max_request_body_size else ""))
        # the server's own bound answers 400: let a chunked body reach data_received's 413 first
        self.request.connection.set_max_body_size(limit + CHUNK_SLACK)

    def data_received(self, chunk: bytes) -> None:
        if self._too_big:
            return
        self.body += chunk
        limit = self.body_limit
        if len(self.body) > limit:  # answered at once; tornado closes the connection instead of reading the rest
            self._too_big = True
            self.body = bytearray()
            error = ApiError(413, f"the request body is over the limit of {limit} bytes")
            self.send_error(413, exc_info=(ApiError, error, None))

    @property
    def body_limit(self) -> int:
        limit = self.ctx.cfg.max_request_body_size
        return min(limit, self.max_body) if self.max_body else limit

    async def decoded(self, *, lowstate: bool = True) -> Any:
        """The request body as Python values (None if empty); ApiError for one too big, of a type salt-api
        does not take, or that does not parse.  A large body is parsed in a thread (YAML is slow), so one
        request cannot hold up the others."""
        if self._too_big:
            raise ApiError(413, f"the request body is over the limit of {self.body_limit} bytes")
        self.ctx.stats.bytes_read += len(self.body)
        body, ctype = bytes(self.body), self.request.headers.get("Content-Type")
        try:
            if parse_inline(ctype, len(body)):
                return decode_body(ctype, body, lowstate=lowstate)
            return await asyncio.get_running_loop().run_in_executor(
                DECODERS, functools.partial(decode_body, ctype, body, lowstate=lowstate))
        except RequestError as exc:
            raise ApiError(exc.status, exc.message) from None

    # ------------------------------------------------------------ CORS

    def _cors(self) -> None:
        origin = self.request.headers.get("Origin", "")
        allowed = self.ctx.cfg.api_cors_origins
        if not origin or not allowed:
            return
        self.set_header("Vary", "Origin")
        if origin in allowed:
            self.set_header("Access-Control-Allow-Origin", origin)
            self.set_header("Access-Control-Allow-Credentials", "true")
        elif "*" in allowed:
            self.set_header("Access-Control-Allow-Origin", "*")
        else:
            return
        self.set_header("Access-Control-Expose-Headers", "X-Auth-Token")

    async def options(self, *args: Any, **kwargs: Any) -> None:
        """A CORS preflight: allowed for the origins `api_cors_origins` names, refused (403) for others."""
        if not self._headers.get("Access-Control-Allow-Origin"):
            raise ApiError(403, "cross-origin requests from this origin are not allowed (api_cors_origins)")
        self.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
        self.set_header("Access-Control-Allow-Headers", CORS_HEADERS)
        self.set_header("Access-Control-Max-Age", "600")
        self.set_status(204)
        await self.finish()

    # ------------------------------------------------------------ answers

    def wants_yaml(self) -> bool:
        accept = self.request.headers.get("Accept", "")
        return "application/x-yaml" in accept or "text/yaml" in accept

    def reply(self, data: Any, status: int = 200) -> None:
        """Answer `data` as JSON (YAML when the client's Accept names it)."""
        self.set_status(status)
        if self.wants_yaml():
            self.set_header("Content-Type", "application/x-yaml")
            text = yaml.safe_dump(data, default_flow_style=False, allow_unicode=True)
        else:
            self.set_header("Content-Type", "application/json")
            text = dumps(data)
        self.finish(text)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ApiError):
            message = exc.message
            for name, value in exc.headers.items():
                self.set_header(name, value)
        elif isinstance(exc, tornado.web.HTTPError):
            message = exc.log_message or self._reason
        else:
            message = "An unexpected error occurred (see rx-api's log)"
        self.error_message = message
        self._cors()  # send_error cleared the headers: a page allowed to call rx-api may read its errors too
        if status_code == 401:
            self.set_header("WWW-Authenticate", "Session")
        self.clear_header("Content-Disposition")
        self.reply({"status": status_code, "return": message}, status_code)

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, tornado.web.HTTPError):
            log.debug("%s %s: %d %s", self.request.method, redact_uri(self.request.path), value.status_code,
                     getattr(value, "message", "") or value.log_message or "")
        else:
            log.error("%s %s failed", self.request.method, redact_uri(self.request.path), exc_info=(typ, value, tb))

    # ------------------------------------------------------------ audit

    def on_finish(self) -> None:
        stats = self.ctx.stats
        stats.current -= 1
        status = self.get_status()
        stats.by_status[status] += 1
        stats.bytes_written += int(self._headers.get("Content-Length", 0) or 0)
        if not self.audited or self.request.method == "OPTIONS":
            return
        outcome = "allowed" if status < 400 else "refused" if status in (401, 403, 413, 429) else "failed"
        who = self.rx_principal or Principal(ANONYMOUS.user, ANONYMOUS.eauth, (), self.request.remote_ip or "")
        self.ctx.auth.audit(who, "api", outcome, method=self.request.method, path=redact_uri(self.request.path),
                            status=status, reason=self.error_message, **self.audit_fields)

    def on_connection_close(self) -> None:
        self._too_big = True  # a client gone mid-body: stop keeping what it sent
        super().on_connection_close()
