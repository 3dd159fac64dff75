"""`GET /events` (server-sent events) and the WebSocket feed (`/ws`, `/ws/<token>`) over the EventHub.

Both authenticate with the `authenticate(handler) -> Principal` coroutine rx-api gives them (the token in
`X-Auth-Token` or the session cookie); as salt-api does, /events also takes it as `?token=` (or
`?salt_token=`) and the WebSocket in its path, for browsers whose EventSource/WebSocket cannot set headers:
such a token is put in the request's `X-Auth-Token` header before `authenticate` runs.  The token is
checked again every TOKEN_RECHECK seconds: an expired or revoked token ends the stream.

Query parameters: `tag` (a tag prefix; repeat it for several; none: every event), `last_event_id` (as the
`Last-Event-ID` header: resume after that id), and for the WebSocket `format_events` (Salt's summaries).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any, Awaitable, Callable

import tornado.iostream
import tornado.web
import tornado.websocket

from rx.api.events import wire
from rx.api.events.core import Client, Record, TooManyClients
from rx.api.events.formatted import FormattedView
from rx.api.events.hub import EventHub
from rx.api.events.salttags import to_salt
from rx.master.services.auth import AuthError, NotPermitted, Principal

log = logging.getLogger("rx.api.events")

Authenticate = Callable[[tornado.web.RequestHandler], Awaitable[Principal]]
MAX_PREFIXES = 16
MAX_PREFIX_CHARS = 512
MAX_CLIENT_MESSAGES = 64
"""Messages a WebSocket client may send (it only needs to say it is ready); more closes the socket."""
WRITE_CHUNK = 1 << 20
"""Bytes written before waiting for the client to take them, while replaying the window."""


_TOKEN_IN_URI = re.compile(r"(?P<q>[?&](?:salt_)?token=)[^&#]*|^(?P<p>/ws/)[^/?#]+")


def redact_uri(uri: str) -> str:
    """A request URI with any token it carries (`?token=`, `?salt_token=`, `/ws/<token>`) shown as `***`: for
    access logs (rx-api's Application `log_function`)."""
    return _TOKEN_IN_URI.sub(lambda m: (m["q"] or m["p"]) + "***", uri)


def event_routes(hub: EventHub, authenticate: Authenticate) -> list[tuple[str, type, dict]]:
    """The event stream's routes for rx-api's Application."""
    kwargs = {"hub": hub, "authenticate": authenticate}
    return [(r"/events", EventsHandler, kwargs), (r"/ws", EventSocket, kwargs), (r"/ws/([^/]+)", EventSocket, kwargs)]


async def authenticated(handler: tornado.web.RequestHandler, authenticate: Authenticate, token: str) -> Principal:
    """The request's principal (a token from the query or the path counts as X-Auth-Token); HTTPError 401
    or 403 when `authenticate` refuses."""
    if token and "X-Auth-Token" not in handler.request.headers:
        handler.request.headers["X-Auth-Token"] = token
    try:
        return await authenticate(handler)
    except NotPermitted as exc:
        raise tornado.web.HTTPError(403, reason=_reason(exc)) from None
    except AuthError as exc:
        raise tornado.web.HTTPError(401, reason=_reason(exc)) from None


def _reason(exc: Exception) -> str:
    return " ".join(str(exc).split())[:200] or "Please log in"


def stream_params(handler: tornado.web.RequestHandler) -> tuple[list[str], int | None]:
    """(tag prefixes, last event id) of a request; HTTPError 400 for values rx-api does not take."""
    prefixes = handler.get_query_arguments("tag")
    if len(prefixes) > MAX_PREFIXES or any(len(p) > MAX_PREFIX_CHARS for p in prefixes):
        raise tornado.web.HTTPError(400, reason=f"at most {MAX_PREFIXES} tag prefixes of at most {MAX_PREFIX_CHARS} "
                                                "characters")
    last = handler.request.headers.get("Last-Event-ID") or handler.get_query_argument("last_event_id", "")
    if not last:
        return prefixes, None
    if not last.isdigit() or len(last) > 20:
        raise tornado.web.HTTPError(400, reason="Last-Event-ID must be an event id (digits) this rx-api sent")
    return prefixes, int(last)


def _write_error(handler: tornado.web.RequestHandler, status_code: int, exc_info: Any = None) -> None:
    """salt-api's error body; an error that carries a `message` (and `headers`) for the caller, as rx-api's
    ApiError does, is shown with it, anything else by its status's reason (never a traceback)."""
    exc = exc_info[1] if exc_info else None
    message = getattr(exc, "message", None)
    for name, value in (getattr(exc, "headers", None) or {}).items():
        handler.set_header(name, value)
    handler.set_header("Content-Type", "application/json")
    handler.finish(wire.dumps({"status": status_code,
                               "return": message if isinstance(message, str) else handler._reason}))


class _Stream:
    """What /events and the WebSocket share: the hub's client, the writer's wake-up, the token re-check."""

    hub: EventHub
    authenticate: Authenticate
    client: Client | None = None
    who: Principal
    _gone = False

    def _attach(self, prefixes: list[str], last_id: int | None) -> list[Record]:
        self._wake = asyncio.Event()
        self._gone_future: asyncio.Future = asyncio.get_running_loop().create_future()
        self.client, first = self.hub.attach(self.hub.access(self.who), prefixes, last_id, self._wake.set,
                                             self._hangup)
        self._recheck_at = time.monotonic() + self.hub.token_recheck
        return first

    def _attach_or_refuse(self, prefixes: list[str], last_id: int | None) -> list[Record]:
        try:
            return self._attach(prefixes, last_id)
        except TooManyClients as exc:
            raise tornado.web.HTTPError(503, reason=str(exc)) from None

    def _hangup(self) -> None:
        raise NotImplementedError

    async def _next(self) -> list[Record] | str:
        """The next records to send, or why the stream ends ('' if the client went away)."""
        assert self.client is not None
        while not self._gone:
            batch = self.client.take()
            if batch:
                return batch
            if self.client.ended:
                return self.client.ended
            if time.monotonic() >= self._recheck_at:
                self._recheck_at = time.monotonic() + self.hub.token_recheck
                try:
                    await self.authenticate(self)  # type: ignore[arg-type]
                except Exception as exc:  # an expired or revoked token, or the token store failing
                    return f"the token is no longer valid: {_reason(exc)}"
            wait = min(self.hub.keepalive, max(0.0, self._recheck_at - time.monotonic()))
            try:
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            except TimeoutError:
                await self._keepalive()
            self._wake.clear()
        return ""

    async def _keepalive(self) -> None:
        pass

    def _went(self) -> None:
        """The client went away or was dropped: the writer stops, whatever it waits for."""
        self._gone = True
        if self.client is not None:
            self._wake.set()
            if not self._gone_future.done():
                self._gone_future.set_result(None)

    async def _unless_gone(self, write: Awaitable) -> None:
        """Wait for a write to reach the client, or for the client to go (a connection closed under a pending
        write may leave its future unresolved); StreamClosedError when it went."""
        done = asyncio.ensure_future(write)
        if not self._gone:
            await asyncio.wait([done, self._gone_future], return_when=asyncio.FIRST_COMPLETED)
        if done.done() and not done.cancelled() and done.exception() is not None:
            self._went()
        elif not done.done():  # its error, if it ever has one, is the one already known: the client went
            done.add_done_callback(lambda f: f.cancelled() or f.exception())
        if self._gone:
            raise tornado.iostream.StreamClosedError()

    def _detach(self) -> None:
        if self.client is not None:
            self.hub.detach(self.client)

    def on_finish(self) -> None:
        """The audit line (as rx-api writes one per request): who, the path (its token hidden), the status and
        how many events the stream delivered; for a WebSocket, when the handshake ends."""
        auth = getattr(self.hub, "auth", None)
        if auth is None or not hasattr(auth, "audit"):
            return
        request = self.request  # type: ignore[attr-defined]
        status = self.get_status()  # type: ignore[attr-defined]
        who = getattr(self, "who", None) or Principal("-", "-", (), request.remote_ip or "")
        outcome = "allowed" if status < 400 else "refused" if status in (401, 403, 503) else "failed"
        auth.audit(who, "api", outcome, method=request.method, path=redact_uri(request.path), status=status,
                   events=self.client.delivered if self.client is not None else None)


class EventsHandler(_Stream, tornado.web.RequestHandler):
    """Server-sent events (salt-api's format, with `id:` lines)."""

    def initialize(self, hub: EventHub, authenticate: Authenticate) -> None:
        self.hub, self.authenticate = hub, authenticate

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        _write_error(self, status_code, kwargs.get("exc_info"))

    async def get(self) -> None:
        token = self.get_query_argument("token", "") or self.get_query_argument("salt_token", "")
        self.who = await authenticated(self, self.authenticate, token)
        prefixes, last_id = stream_params(self)
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")
        self._transforms = []  # no gzip (compress_response): every batch must reach the client as it is written
        first = self._attach_or_refuse(prefixes, last_id)
        try:
            self.write(wire.SSE_PREAMBLE)
            await self._send(first)
            while True:
                got = await self._next()
                if isinstance(got, str):
                    if got:
                        await self._send([self.hub.closing(got)])
                    break
                await self._send(got)
        except tornado.iostream.StreamClosedError:
            self._gone = True
        finally:
            self._detach()
        if not self._gone:
            self.finish()

    async def _send(self, records: list[Record]) -> None:
        size = 0
        for rec in records:
            frame = rec.sse
            self.write(frame)
            size += len(frame)
            if size >= WRITE_CHUNK:
                await self._unless_gone(self.flush())
                size = 0
        await self._unless_gone(self.flush())

    async def _keepalive(self) -> None:
        self.write(wire.SSE_KEEPALIVE)
        await self._unless_gone(self.flush())

    def _hangup(self) -> None:
        self._went()
        self.request.connection.close()  # type: ignore[union-attr]

    def on_connection_close(self) -> None:
        self._went()


class EventSocket(_Stream, tornado.websocket.WebSocketHandler):
    """The same events over a WebSocket, once the client sends `websocket client ready`."""

    def initialize(self, hub: EventHub, authenticate: Authenticate) -> None:
        self.hub, self.authenticate = hub, authenticate
        self._task: asyncio.Task | None = None
        self._messages = 0

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        _write_error(self, status_code, kwargs.get("exc_info"))

    async def get(self, token: str = "") -> None:
        self.who = await authenticated(self, self.authenticate, token)
        self._params = stream_params(self)
        self._formatted = "format_events" in self.request.query_arguments
        try:
            self.hub.room(self.hub.access(self.who))
        except TooManyClients as exc:
            raise tornado.web.HTTPError(503, reason=str(exc)) from None
        await super().get(token)

    @property
    def ping_interval(self) -> float | None:
        return self.hub.keepalive

    @property
    def max_message_size(self) -> int:
        return 4096

    def open(self, *args: Any, **kwargs: Any) -> None:
        """The stream is attached (and counted) at once; it is sent once the client says it is ready (a client
        that never does is dropped when its queue fills, as a slow one)."""
        try:
            self._first: list[Record] = self._attach(*self._params)
        except TooManyClients:
            self.close(1013, "too many event streams")

    def on_message(self, message: str | bytes) -> None:
        self._messages += 1
        if self._messages > MAX_CLIENT_MESSAGES:
            self.close(1008, "too many messages")
            return
        if message == wire.WS_READY and self._task is None and self.client is not None:
            self._task = asyncio.get_running_loop().create_task(self._pump())
        self._send_text(wire.WS_ACK)

    def _send_text(self, text: str) -> Any:
        try:
            return self.write_message(text)
        except tornado.websocket.WebSocketClosedError:
            self._gone = True
            return None

    async def _pump(self) -> None:
        view = FormattedView() if self._formatted else None
        got: list[Record] | str = self._first
        try:
            while not isinstance(got, str):
                last = None
                for text in self._render(got, view):
                    last = self._send_text(text)
                if last is not None:
                    await self._unless_gone(last)
                got = await self._next()
            if got:
                sent = self._send_text(self.hub.closing(got).ws)
                if sent is not None:
                    await self._unless_gone(sent)
                self.close(1000, "stream ended")
        except (tornado.websocket.WebSocketClosedError, tornado.iostream.StreamClosedError):
            pass
        finally:
            self._detach()

    def _render(self, records: list[Record], view: FormattedView | None) -> list[str]:
        if view is None:
            return [rec.ws for rec in records]
        events = [to_salt(rec.tag, rec.data, rec.ts) for rec in records if not rec.notice]
        return [wire.dumps(msg) for msg in view.update(events)] + [rec.ws for rec in records if rec.notice]

    async def _keepalive(self) -> None:
        if self.ws_connection is None or self.ws_connection.is_closing():
            self._went()

    def _hangup(self) -> None:
        self._went()
        self.close(1013, "too slow: dropped")

    def on_close(self) -> None:
        self._went()
        self._detach()  # a client that closes before it is ready has no pump to detach it
