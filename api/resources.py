"""salt-api's convenience routes over the clients: `/minions` (cached grains; publish a job), `/jobs` (list,
one job), `/keys` (list, fingerprints, accept/reject/delete), and `/hook/<path>` (an event on the master's
bus).  Each needs the client it is built on enabled (`api_enable_clients`) and the user's rights for it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from rx.acl import RUNNER
from rx.api import clients
from rx.api.base import ApiError, BaseHandler, authenticate
from rx.api.handlers import LowstateHandler, guarded
from rx.api.lowstate import RequestError, enabled_check
from rx.api.wheel import exact
from rx.master.services import UnknownJob
from rx.client.results import PermissionDenied
from rx.master.services.auth import Principal
from rx.transport.ids import is_jid
from rx.transport.tags import netapi_hook

HOOK_PATH = re.compile(r"[A-Za-z0-9_.:@+=\-]+(/[A-Za-z0-9_.:@+=\-]+)*")
HOOK_PATH_MAX = 200
SECRET_HEADERS = frozenset({"authorization", "cookie", "x-auth-token", "proxy-authorization"})
"""Request headers a hook event never carries: every watcher of the bus would read them."""
LIST_FILTERS = ("search_function", "search_target", "search_user", "start_time", "end_time", "limit")
KEY_ACTIONS = ("accept", "reject", "delete")
KEY_OPTIONS = ("include_rejected", "include_denied", "include_accepted")


class ClientRoute(LowstateHandler):
    """A route built on one client: that client must be enabled."""

    def need(self, client: str) -> None:
        try:
            enabled_check(client, self.ctx.enabled)
        except RequestError as exc:
            raise ApiError(exc.status, exc.message) from None


class MinionsHandler(ClientRoute):
    async def get(self, mid: str | None = None) -> None:
        """`{"return": [{id: grains}]}` from the master's grains cache (False for a minion that has not sent its
        grains): the minions of `*` (or of the glob `mid`) the user may run something on, as the master's
        preview of the target shows them to the user."""
        self.need("local")
        caller = await self.caller()
        self.audit_fields = {"clients": ["local"], "fun": "grains.items (cache)", "target": mid or "*"}
        async with self.ctx.local(caller.token, caller.source) as client:
            shown = await guarded(client.preview(mid or "*"))
        grains = await self.ctx.services.stores.grains.get_many(list(shown.minions))
        self.reply({"return": [{m: grains.get(m) or False for m in sorted(shown.minions)}]})

    async def post(self, mid: str | None = None) -> None:
        """Lowstates run with `local_async` (202): `{"return": [{"jid", "minions"}], "_links": {"jobs": [...]}}`."""
        self.need("local_async")
        jobs = await self.execute(client="local_async")
        self.reply({"return": jobs, "_links": {"jobs": [{"href": f"/jobs/{j['jid']}"} for j in jobs if j]}}, 202)


class JobsHandler(ClientRoute):
    def _allowed(self, who: Principal, fun: str, args: list, kwargs: dict, own: str) -> None:
        """Allow the runner `fun` with these arguments by the user's runner right (audited by the auth
        service), else, when `own` says why, as the user's own jobs (audited here); ApiError 403 otherwise."""
        rights = self.ctx.auth.rights(who)
        if own and rights is not None and not rights.allows_spec(RUNNER, fun, args, kwargs):
            self.ctx.auth.audit(who, RUNNER, "allowed", fun=fun, reason=own)
            return
        try:
            clients.authorize(self.ctx.auth.authorize_runner, who, fun, args, kwargs)
        except PermissionDenied as exc:
            raise ApiError(403, str(exc)) from None

    async def get(self, jid: str | None = None) -> None:
        """`GET /jobs`: `{"return": [{jid: job}]}` (jobs.list_jobs; filters as query arguments); `GET /jobs/<jid>`:
        `{"info": [jobs.list_job], "return": [{id: return}]}`.  A user without the runner right sees their own
        jobs only."""
        self.need("runner")
        caller = await self.caller()
        if jid is None:
            await self._list(caller.who)
            return
        if not is_jid(jid):
            raise ApiError(404, f"no job {jid[:40]!r} (a jid is 20 digits)")
        self.audit_fields = {"clients": ["runner"], "fun": "jobs.list_job", "jid": jid}
        try:
            record = await self.ctx.services.jobs.job(jid)
        except UnknownJob:
            raise ApiError(404, f"no job {jid} in the job cache") from None
        own = "the user's own job" if self.ctx.auth.may_see(caller.who, record) else ""
        self._allowed(caller.who, "jobs.list_job", [jid], {}, own)
        info = await guarded(self.ctx.runners.call("jobs.list_job", [jid], {}))
        returns = {mid: r.get("return") for mid, r in info.get("Result", {}).items()}
        self.reply({"info": [info], "return": [returns]})

    async def _list(self, who: Principal) -> None:
        kwargs: dict[str, Any] = {k: self.get_query_argument(k) for k in LIST_FILTERS
                                  if self.get_query_argument(k, None) is not None}
        if "limit" in kwargs:
            if not kwargs["limit"].isdigit():
                raise ApiError(400, "limit: a whole number >= 0")
            kwargs["limit"] = int(kwargs["limit"])
        self.audit_fields = {"clients": ["runner"], "fun": "jobs.list_jobs"}
        rights = self.ctx.auth.rights(who)
        if rights is not None and not rights.allows_spec(RUNNER, "jobs.list_jobs", [], kwargs):
            kwargs["search_user"] = [who.owner]  # a list: the name is taken whole, never split at commas
        self._allowed(who, "jobs.list_jobs", [], kwargs, "the user's own jobs")
        self.reply({"return": [await guarded(self.ctx.runners.call("jobs.list_jobs", [], kwargs))]})


class KeysHandler(ClientRoute):
    async def get(self, mid: str | None = None) -> None:
        """`{"return": key.list_all}`, or for one id (a glob, as Salt's) `{"return": key.finger}`."""
        self.need("wheel")
        low = {"client": "wheel", "fun": "key.finger", "match": mid} if mid else {"client": "wheel",
                                                                                   "fun": "key.list_all"}
        self.reply({"return": clients.wheel_return((await self.execute([low]))[0])})

    async def post(self, mid: str | None = None) -> None:
        """`POST /keys/<id>` with `action` accept, reject or delete (and include_rejected, include_denied,
        include_accepted): that key only (the id is not a glob here); `{"return": the keys by state after}`."""
        self.need("wheel")
        await self.caller()
        if mid is None:
            raise ApiError(400, "rx does not generate minion keys on the master (Salt's key.gen_accept): start "
                                "the minion and accept its key with POST /keys/<id> action=accept")
        data = await self.decoded() or {}
        if isinstance(data, list) and len(data) == 1:
            data = data[0]
        action = data.get("action") if isinstance(data, dict) else None
        if action not in KEY_ACTIONS:
            raise ApiError(400, f"action: give one of {', '.join(KEY_ACTIONS)}")
        low = {"client": "wheel", "fun": f"key.{action}", "match": exact(mid),
               **{k: data[k] in (True, "true", "True", "1") for k in KEY_OPTIONS if k in data}}
        self.reply({"return": clients.wheel_return((await self.execute([low]))[0])})


@dataclass(frozen=True)
class HookEvent:
    """What `POST /hook/<path>` fires (Salt's fields: the raw body, the decoded body, the headers)."""

    path: str
    data: dict

    @property
    def tag(self) -> str:
        return netapi_hook(self.path)

    def to_wire(self) -> dict:
        return self.data


class HookHandler(BaseHandler):
    async def post(self, path: str | None = None) -> None:
        """Fire `rx/netapi/hook/<path>` with `{"body", "post", "headers"}` (no credential headers); `{"success":
        true}`.  A token unless webhook_disable_auth."""
        if not self.ctx.cfg.webhook_disable_auth:
            await authenticate(self)
        path = (path or "").strip("/")
        if path and (len(path) > HOOK_PATH_MAX or not HOOK_PATH.fullmatch(path)
                     or any(p in (".", "..") for p in path.split("/"))):
            raise ApiError(400, f"hook path: 1-{HOOK_PATH_MAX} characters of letters, digits and _.:@+=- "
                                "between slashes")
        try:
            post = await self.decoded(lowstate=False)
        except ApiError as exc:
            if exc.status != 400 or not self.request.headers.get("Content-Type", "").startswith("text/plain"):
                raise
            post = None  # text that is not JSON: its text is in `body`
        body = bytes(self.body).decode("utf-8", "replace")
        headers = {k: v for k, v in self.request.headers.get_all() if k.lower() not in SECRET_HEADERS}
        event = HookEvent(path, {"body": body, "post": post, "headers": headers})
        self.audit_fields = {"fun": "hook", "target": event.tag}
        if not await self.ctx.services.events.fire([event]):
            raise ApiError(503, "the master is not running on this host (no event bus): the hook was not fired")
        self.reply({"success": True})
