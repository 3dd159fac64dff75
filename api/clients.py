"""rx-api's lowstate clients: what one checked chunk (`Low`) does for one user, in salt-api's return shapes.

- `local` (`{id: return}`; False for a minion that did not return, as Salt's LocalClient.cmd), `local_async`
  (`{"jid", "minions"}`), `local_subset` (`{id: return}` of `subset` minions picked at random), `local_batch`
  (one `{id: return}` per minion, each an item of the answer's list): published with the user's token
  through an AsyncLocalClient, so the master's worker checks the user's rights on the expanded target (the
  one choke point; a refusal is a 403 and nothing is published).
- `runner` (what the runner returns; `full_return`: Salt's `{"tag", "data": {fun, jid, user, fun_args,
  return, success}}`), `runner_async` (`{"tag", "jid"}`: the job is recorded and its return stored, owned
  by the user): the runner registry's functions, after AuthService.authorize_runner.
- `wheel` (`{"tag", "data": {fun, jid, tag, user, fun_args, return, success}}`): rx.api.wheel's allow-list,
  after AuthService.authorize_wheel.

Runner and wheel functions take keyword arguments from `kwarg`, from `key=value` strings in `arg`, and from
the chunk's own keys that name one of their parameters (`{"fun": "key.finger", "match": "web1"}`), as
salt-api passes them.
"""

from __future__ import annotations

import asyncio
import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from rx.api.lowstate import Low, RequestError, number
from rx.api.wheel import WHEEL
from rx.client import saltshape as shape
from rx.client.results import BadRequest, PermissionDenied, Published
from rx.client.runner import ASYNC_LINES_MAX, salt_style_args
from rx.client.runnerload import check_args
from rx.master.services.auth import NotPermitted, Principal
from rx.modules import CONTEXT_PARAM, CommandError, Result
from rx.transport.ids import new_jid

if TYPE_CHECKING:
    from rx.api.context import ApiContext


CLIENT_DOCS = {
    "local": "run a job and wait: `{id: return}` (False: did not return; `full_return`: `{id: {ret, retcode, "
             "jid}}`; `expect_minions`: the reason text instead of False). Options: timeout",
    "local_async": "publish and return at once: `{jid, minions}` (`{}` when nothing matched)",
    "local_subset": "run on `subset` (or Salt's `sub`, default 3) minions picked at random: `{id: return}`",
    "local_batch": "rolling batches of `batch` minions (a number or `N%`, default 10%): one `{id: return}` item "
                   "per minion in the answer's list",
    "runner": "a runner (docs/runners.md), after the `@runner` right: what it returns (`full_return`: `{tag, "
              "data: {fun, jid, user, fun_args, return, success}}`; one that fails returns `ERROR: ...`, success "
              "false). Options: timeout. It is stopped after `max_wait_seconds` (or `timeout` if longer), and when "
              "the client goes away (event.watch, state.event run until stopped)",
    "runner_async": "a runner in the background, recorded as a job the user owns: `{tag, jid}` (its return: "
                    "GET /jobs/<jid>); stopped after `max_wait_seconds` (or `timeout` if longer)",
    "wheel": "a wheel function (below), after the `@wheel` right: `{tag, data: {fun, jid, tag, user, fun_args, "
             "return, success}}`",
}
"""What each lowstate client does (docs/api.md)."""


class Spread(list):
    """A chunk's answer that is several items of the response's `return` list (local_batch), not one."""


@dataclass(frozen=True)
class Caller:
    """Who runs a chunk: the principal, the token the master checks, the client's address."""

    who: Principal
    token: str
    source: str


async def run(ctx: "ApiContext", low: Low, caller: Caller) -> Any:
    """The chunk's answer; client errors (BadRequest, PermissionDenied, MasterUnreachable...) propagate."""
    ctx.stats.by_client[low.client] += 1
    if low.client.startswith("local"):
        return await _local(ctx, low, caller)
    if low.client == "wheel":
        return await _wheel(ctx, low, caller)
    return await _runner(ctx, low, caller)


# ---------------------------------------------------------------- local

async def _local(ctx: "ApiContext", low: Low, caller: Caller) -> Any:
    args, kwarg = shape.condition_args(low.fun, low.arg, low.kwarg)
    opts = low.options
    timeout = number(opts, "timeout", low=0.001, high=ctx.cfg.max_wait_seconds)
    full = opts.get("full_return") is True
    async with ctx.local(caller.token, caller.source) as client:
        if low.client == "local_async":
            pub = await client.run_job(low.tgt, low.fun, args, tgt_type=low.tgt_type, kwarg=kwarg)
            return shape.pub_data(pub)
        if low.client == "local_subset":
            subset = opts.get("subset", opts.get("sub", 3))
            subset = int(subset) if isinstance(subset, str) and subset.isdigit() else subset  # a form's text
            if isinstance(subset, bool) or not isinstance(subset, int) or subset < 1:
                raise BadRequest(f"subset: {str(subset)[:20]!r} is not a whole number >= 1")
            return await client.cmd_subset(low.tgt, low.fun, args, subset=subset, tgt_type=low.tgt_type,
                                           kwarg=kwarg, timeout=timeout, full_return=full)
        if low.client == "local_batch":
            batch = opts.get("batch") or "10%"
            if not isinstance(batch, (str, int)) or isinstance(batch, bool):
                raise BadRequest("batch: give a number of minions or a percentage, e.g. 2 or '25%'")
            out = Spread()
            async for item in client.cmd_batch(low.tgt, low.fun, args, batch=batch, tgt_type=low.tgt_type,
                                               kwarg=kwarg, timeout=timeout):
                out.extend({mid: shape.returned(r) if full else r.get("ret")} for mid, r in item.items()
                           if not r.get("failed"))
            return out
        return await _cmd(client, low, args, kwarg, timeout, full)


async def _cmd(client: Any, low: Low, args: list, kwarg: dict, timeout: float | None, full: bool) -> dict:
    """Salt's LocalClient.cmd over the async client: every expected minion, False for one that did not return."""
    show = low.options.get("expect_minions") is True
    published: list[Published] = []
    out: dict = {}
    async for item in client.cmd_iter(low.tgt, low.fun, args, timeout=timeout, tgt_type=low.tgt_type, kwarg=kwarg,
                                      expect_minions=True, published=published):
        for mid, r in item.items():
            if r.get("failed"):
                if not show:
                    continue
                data = shape.cli_missing(r, published[0].jid if published else "")
            else:
                data = shape.returned(r)
            out[mid] = data if full else data.get("ret")
    minions = published[0].minions if published else []
    for mid in shape.unmatched(low.tgt, low.tgt_type, minions):  # Salt reports a listed id with no key as missing
        data = shape.cli_missing({"reason": shape.NO_KEY}, published[0].jid)
        out.setdefault(mid, data if full else data["ret"])
    for mid in minions:
        out.setdefault(mid, False)
    return out


# ---------------------------------------------------------------- runner and wheel

def bind(func: Callable, fun: str, low: Low) -> tuple[list, dict]:
    """A runner or wheel function's (args, kwargs) from the chunk; BadRequest (with the usage) if it does not
    take them."""
    args, kwargs = salt_style_args(low.arg, low.kwarg)
    params = [p for n, p in enumerate(inspect.signature(func).parameters.values())
              if not (n == 0 and p.name == CONTEXT_PARAM)]
    named = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    for key, value in low.options.items():
        if key in named and key not in kwargs:
            kwargs[key] = value
    check_args(fun, func, args, kwargs)
    return args, kwargs


def authorize(check: Callable, who: Principal, fun: str, args: list, kwargs: dict) -> None:
    """`check` (AuthService.authorize_runner or authorize_wheel; it audits), its refusal as PermissionDenied."""
    try:
        check(who, fun, args, kwargs)
    except NotPermitted as exc:
        raise PermissionDenied(str(exc)) from None


def _fun_args(args: list, kwargs: dict) -> list:
    return list(args) + ([kwargs] if kwargs else [])


async def _runner(ctx: "ApiContext", low: Low, caller: Caller) -> Any:
    fun = str(low.fun)
    func = ctx.runners.registry.resolve(fun)
    args, kwargs = bind(func, fun, low)
    authorize(ctx.auth.authorize_runner, caller.who, fun, args, kwargs)
    timeout = number(low.options, "timeout")
    limit = max(timeout or 0.0, ctx.cfg.max_wait_seconds)  # event.watch and the like run until stopped
    if low.client == "runner_async":
        jid = await ctx.runners.start(fun, args, kwargs, timeout=timeout, user=caller.who.owner, limit=limit)
        return {"tag": f"rx/job/{jid}", "jid": jid}
    lines: list[str] = []
    success = True

    def keep(line: str) -> None:
        if len(lines) < ASYNC_LINES_MAX:
            lines.append(line)
    try:
        async with asyncio.timeout(limit):
            value = await ctx.runners.call(fun, args, kwargs, timeout=timeout, emit=keep)
    except CommandError as exc:  # the runner failed in a way it explains: its answer, as Salt's runner client says
        value, success = f"ERROR: {fun}: {exc}", False
    except TimeoutError:
        value, success = lines or f"ERROR: {fun}: still running after {limit:g}s (max_wait_seconds): stopped", False
    if isinstance(value, Result):
        value, success = value.value, value.retcode == 0
    elif value is None and lines:
        value = lines
    if low.options.get("full_return") is not True:
        return value
    jid = new_jid()
    return {"tag": f"rx/run/{jid}/ret", "data": {"fun": f"runner.{fun}", "jid": jid, "user": caller.who.owner,
                                                 "fun_args": _fun_args(args, kwargs), "return": value,
                                                 "success": success}}


async def _wheel(ctx: "ApiContext", low: Low, caller: Caller) -> dict:
    fun = str(low.fun)
    func = WHEEL.get(fun)
    if func is None:
        raise RequestError(400, f"no wheel function {fun!r}: rx-api has {', '.join(sorted(WHEEL))}")
    args, kwargs = bind(func, fun, low)
    authorize(ctx.auth.authorize_wheel, caller.who, fun, args, kwargs)
    jid = new_jid()
    tag = f"rx/wheel/{jid}"
    data = {"fun": f"wheel.{fun}", "jid": jid, "tag": tag, "user": caller.who.owner,
            "fun_args": _fun_args(args, kwargs)}
    return {"tag": tag, "data": {**data, "return": await func(ctx, *args, **kwargs), "success": True}}


def wheel_return(answer: dict) -> Any:
    """What a wheel answer returned (what /keys shows)."""
    return answer.get("data", {}).get("return", {})
