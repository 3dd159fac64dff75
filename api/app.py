"""rx-api's tornado Application and its one route table (`ROUTES`), from which docs/api.md is generated
(`python -m rx.api --markdown`).  Routes of other parts (the event stream) are appended through
`make_app(ctx, extra_routes=...)`; every path not matched is a Salt-shaped 404."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Sequence

import tornado.web

from rx.api.context import ApiContext
from rx.api.events.handlers import redact_uri
from rx.api.handlers import (IndexHandler, LoginHandler, LogoutHandler, MetricsHandler, NotFoundHandler, RunHandler,
                             StaticHandler, StatsHandler, TokenHandler)
from rx.api.resources import HookHandler, JobsHandler, KeysHandler, MinionsHandler

log = logging.getLogger("rx.api")

MINION = r"(?P<mid>[^/]{1,255})"
JID = r"(?P<jid>[^/]{1,64})"


@dataclass(frozen=True)
class Route:
    """One path of rx-api: its pattern, handler, and what docs/api.md says of it."""

    path: str
    pattern: str
    handler: type
    methods: str
    auth: str
    doc: str


ROUTES: tuple[Route, ...] = (
    Route("/", r"/", IndexHandler, "GET, POST", "POST: token",
          "GET: `{\"return\": \"Welcome\", \"clients\": [enabled clients]}`; a browser (`Accept: text/html`) gets the "
          "dashboard. POST: a lowstate list run with the session's token: `{\"return\": [answer per chunk]}`"),
    Route("/login", r"/login", LoginHandler, "GET, POST", "none",
          "POST `username`, `password`, `eauth` (JSON, YAML or form): `{\"return\": [{token, expire, start, user, "
          "eauth, perms}]}`, the token also in `X-Auth-Token` and the `session_id` cookie. 401 bad credentials, "
          "429 locked out (`Retry-After`)"),
    Route("/logout", r"/logout", LogoutHandler, "POST", "token",
          "revokes the token at once and expires the cookie: `{\"return\": \"Your token has been cleared\"}`"),
    Route("/token", r"/token", TokenHandler, "POST", "none",
          "salt-api's /token (`pepper -r`): `[{token, start, expire, name, eauth}]` for the credentials; no cookie"),
    Route("/run", r"/run", RunHandler, "POST", "in each chunk",
          "a lowstate list whose chunks carry `token`, or `username`, `password`, `eauth` (a login for this "
          "request only); no session"),
    Route("/minions[/<id>]", rf"/minions(?:/{MINION})?", MinionsHandler, "GET, POST", "token",
          "GET (client `local`): `{\"return\": [{id: grains}]}` from the master's grains cache, the minions the "
          "user may run something on (False: no grains cached yet). POST (client `local_async`): lowstates "
          "published at once, 202 `{\"return\": [{jid, minions}], \"_links\": {\"jobs\": [{href}]}}`"),
    Route("/jobs[/<jid>]", rf"/jobs(?:/{JID})?", JobsHandler, "GET", "token",
          "client `runner`. `/jobs`: `{\"return\": [{jid: job}]}` (jobs.list_jobs; query arguments "
          "search_function, search_target, search_user, start_time, end_time, limit). `/jobs/<jid>`: "
          "`{\"info\": [jobs.list_job], \"return\": [{id: return}]}`. Without the runner right: the user's own "
          "jobs only"),
    Route("/keys[/<id>]", rf"/keys(?:/{MINION})?", KeysHandler, "GET, POST", "token",
          "client `wheel`. GET `/keys`: `{\"return\": key.list_all}`; GET `/keys/<id>`: `{\"return\": key.finger}`; "
          "POST `/keys/<id>` with `action` accept, reject or delete (and include_rejected, include_denied, "
          "include_accepted): that key, `{\"return\": keys by state after}`"),
    Route("/hook[/<path>]", r"/hook(?:/(?P<path>.*))?", HookHandler, "POST", "token (unless webhook_disable_auth)",
          "fires `rx/netapi/hook/<path>` on the master's bus with `{body, post, headers}` (credential headers "
          "removed): `{\"success\": true}`; 503 when the master is not running"),
    Route("/stats", r"/stats", StatsHandler, "GET", "token (unless stats_disable_auth)",
          "rx-api's counters: `{\"rx-api\": {Uptime, Requests, Current Requests, Bytes Read, Bytes Written, "
          "Requests by status, Requests by client, Logins}}`"),
    Route("/metrics", r"/metrics", MetricsHandler, "GET", "token (unless stats_disable_auth)",
          "the master's Prometheus metrics (docs/metrics.md), as its `metrics_port` serves them"),
    Route("/static/<path>", r"/static/(.*)", StaticHandler, "GET", "none",
          "the dashboard's files (api/static); nothing outside that directory, no dot files"),
)


def make_app(ctx: ApiContext, extra_routes: Sequence[tuple[str, type, dict]] = ()) -> tornado.web.Application:
    """The Application over `ctx`: ROUTES, then `extra_routes` (pattern, handler, init kwargs: the event
    stream's), then the 404 of every other path.  Handlers reach `ctx` as `application.settings["rx_api"]`."""
    handlers: list[Any] = []
    for route in ROUTES:
        kwargs = {"path": str(ctx.static_dir)} if route.handler is StaticHandler else {}
        handlers.append((route.pattern, route.handler, kwargs))
    handlers.extend(extra_routes)
    return tornado.web.Application(handlers, default_handler_class=NotFoundHandler, rx_api=ctx, xsrf_cookies=False,
                                   compress_response=True, serve_traceback=False, log_function=_log_request)


def _log_request(handler: tornado.web.RequestHandler) -> None:
    log.info("%s %s %d %.1fms", handler.request.method, redact_uri(handler.request.path), handler.get_status(),
             1000 * handler.request.request_time())
