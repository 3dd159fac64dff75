"""LocalClient: the synchronous client, a drop-in for Salt's `salt.client.LocalClient`.

Its methods take Salt's parameters, in Salt's order, and return Salt's shapes (rx.client.saltshape), so a
script written for Salt needs only its import changed.  It drives an AsyncLocalClient (rx's typed results,
for asyncio code) on its own event loop; what rx adds is in keyword arguments Salt does not have
(`delimiter`, `max_wait`, `private`, `job_expire`, `poll`) and in `rx_reasons=True` (see saltshape).

Deliberate differences from Salt (README "Python API: LocalClient"): no returners (`ret=` is ignored with a
warning; every return is in the master's job store); a jid must be rx's (20 digits, not used before); a
target rx cannot parse raises BadRequest instead of matching nothing; nothing is printed when a target
matches nothing; returns carry no `out` key (Salt's outputter hint) except a missing minion's `no_return`;
functions get no `__pub_*` keyword arguments.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import random
from contextlib import closing
from typing import Any, AsyncIterator, Callable, Iterator, Sequence

from rx.client import saltshape as shape
from rx.client.local import AsyncLocalClient
from rx.client.results import Published
from rx.config import ConfigError, MasterConfig, load_master_config
from rx.transport.replies import LookupReply

log = logging.getLogger("rx.client")

PUBLISH_OPTIONS = frozenset({"delimiter", "private", "job_expire"})
"""rx's keyword arguments of a publish, taken from `**kwargs`."""
GATHER_OPTIONS = PUBLISH_OPTIONS | {"gather_job_timeout", "max_wait"}
BATCH_OPTIONS = GATHER_OPTIONS | {"batch_wait", "failhard", "timeout"}
SALT_ONLY = frozenset({"listen", "show_jid", "show_timeout", "full_return", "progress", "verbose", "yield_pub_data",
                       "expect_minions"})
"""Salt keywords a method may be handed (Salt passes its callers' keywords along) and rx has no use for there."""


def config_dir_of(c_path: str | None) -> str | None:
    """The config dir of Salt's `c_path` (the master config FILE, e.g. /etc/rx/master) or of a config dir."""
    if c_path is None or os.path.isdir(c_path):
        return c_path
    if os.path.basename(c_path.rstrip("/")) == "master":
        return os.path.dirname(c_path.rstrip("/")) or "."
    if os.path.exists(c_path):
        raise ConfigError(f"{c_path}: rx reads the master's config from the file named 'master' in a config dir: "
                          "give that file or its dir")
    return c_path  # neither: rx.config says the dir does not exist


class _Published(list):
    """The `published` list handed to AsyncLocalClient.cmd_iter, calling `then(pub)` as the job goes out."""

    def __init__(self, then: Callable[[Published], None] | None = None) -> None:
        super().__init__()
        self._then = then

    def append(self, pub: Published) -> None:
        super().append(pub)
        if self._then is not None:
            self._then(pub)

    @property
    def minions(self) -> list[str]:
        return list(self[0].minions) if self else []

    @property
    def jid(self) -> str:
        return self[0].jid if self else ""


class LocalClient:
    """Publishes jobs to the master on this host and gathers their returns, as Salt's LocalClient does.

    `c_path` is Salt's: the master config file (`/etc/rx/master`); rx also takes its config dir
    (`/etc/rx`; default: `RX_CONFIG_DIR`, else /etc/rx).  `mopts`: a MasterConfig, or a mapping of settings
    over the config file's.  Salt's `skip_perm_errors`, `keep_loop`, `auto_reconnect` and `listen` change
    nothing here; an `io_loop` is refused (in asyncio code use AsyncLocalClient).  `rx_reasons`: a minion
    that did not return carries rx's reason (rx.client.saltshape).  `token`/`source`: publish as the user of
    that token (external_auth), from that address, as rx-api does; the master checks the user's rights.  One
    client runs any number of jobs; use it as a context manager, or call close() (Salt's destroy()), so its
    sockets are released.
    """

    def __init__(self, c_path: str | None = None, mopts: MasterConfig | dict | None = None,
                 skip_perm_errors: bool = False, io_loop: Any = None, keep_loop: bool = False,
                 auto_reconnect: bool = False, listen: bool = False, *, cfg: MasterConfig | None = None,
                 rx_reasons: bool = False, token: str | None = None, source: str = "") -> None:
        if io_loop is not None:
            raise TypeError("LocalClient runs its own event loop: in asyncio code use rx.client.AsyncLocalClient")
        config_dir = config_dir_of(c_path)
        if isinstance(mopts, MasterConfig):
            cfg = cfg or mopts
        elif mopts:
            cfg = cfg or load_master_config(config_dir, overrides=mopts)
        self.rx_reasons = rx_reasons
        self._client = AsyncLocalClient(config_dir, cfg=cfg, token=token, source=source)
        self._loop = asyncio.new_event_loop()

    @property
    def opts(self) -> dict:
        """The master's settings as a dict (Salt's `opts`); a copy."""
        cfg = self._client.cfg
        return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}

    def __enter__(self) -> "LocalClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if not self._loop.is_closed():
            self._loop.run_until_complete(self._client.aclose())
            self._loop.close()

    destroy = close

    # ------------------------------------------------------------ running the async client

    def _run(self, coro: Any) -> Any:
        return self._loop.run_until_complete(coro)

    def _iter(self, agen: AsyncIterator[dict], poll: float | None = None) -> Iterator[dict | None]:
        step: asyncio.Task | None = None
        try:
            while True:
                step = self._loop.create_task(agen.__anext__())
                if poll is not None:
                    while not step.done():
                        self._run(asyncio.wait({step}, timeout=poll))
                        if not step.done():
                            yield None
                try:
                    yield self._run(step)
                except StopAsyncIteration:
                    return
        finally:
            if step is not None and not step.done():  # the caller stopped while a step was waiting: finish it
                step.cancel()
                self._run(asyncio.gather(step, return_exceptions=True))
            self._run(agen.aclose())

    @staticmethod
    def _options(method: str, kwargs: dict, allowed: frozenset) -> dict:
        """rx's options among a call's extra keywords; the others are logged and ignored (Salt passes unknown
        keywords on to the master, where they change nothing)."""
        ignored = sorted(k for k in kwargs if k not in allowed and k not in SALT_ONLY)
        if ignored:
            log.warning("LocalClient.%s: ignoring %s (not used by rx)", method, ", ".join(ignored))
        return {k: v for k, v in kwargs.items() if k in allowed}

    @staticmethod
    def _returners(ret: str) -> None:
        if ret:
            log.warning("LocalClient: ret=%r ignored: rx has no returners (every return is kept in the master's "
                        "job store: rx-run jobs.lookup_jid JID)", ret)

    def _gather(self, method: str, tgt: str | list, fun: str | list, arg: Sequence, timeout: float | None,
                tgt_type: str, ret: str, jid: str, kwarg: dict | None, kwargs: dict, poll: float | None = None,
                then: Callable[[Published], None] | None = None) -> tuple[_Published, Iterator]:
        """Publish and gather: every expected minion once, `(id, rx's return or missing dict)`, then the ids of
        a list target that are no accepted minion's (reason NO_KEY); None every `poll` seconds of quiet."""
        args, kw = shape.condition_args(fun, arg, kwarg)
        self._returners(ret)
        opts = self._options(method, kwargs, GATHER_OPTIONS)
        published = _Published(then)
        agen = self._client.cmd_iter(tgt, fun, args, timeout=shape.timeout_of(timeout), tgt_type=tgt_type, kwarg=kw,
                                     jid=jid or "", expect_minions=True, published=published, **opts)

        def items() -> Iterator:
            with closing(self._iter(agen, poll)) as steps:
                for item in steps:
                    if item is None:
                        yield None
                        continue
                    yield from item.items()
            for mid in shape.unmatched(tgt, tgt_type, published.minions):
                yield mid, {"failed": True, "reason": shape.NO_KEY}
        return published, items()

    @staticmethod
    def _banner(pub: Published) -> None:
        if pub.minions:
            text = f"Executing job with jid {pub.jid}"
            print(f"{text}\n{'-' * len(text)}\n", flush=True)

    # ------------------------------------------------------------ Salt's methods

    def cmd(self, tgt: str | list, fun: str | list, arg: Sequence = (), timeout: float | None = None,
            tgt_type: str = "glob", ret: str = "", jid: str = "", full_return: bool = False,
            kwarg: dict | None = None, **kwargs: Any) -> dict:
        """Run a job; `{id: return}` once every expected minion returned or was given up on (False for those;
        with `expect_minions=True`, their "Minion did not return" text).  `full_return`: `{id: {"ret",
        "retcode", "jid"}}`.  A target that matches nothing: `{}`."""
        show = bool(kwargs.get("expect_minions"))
        published, items = self._gather("cmd", tgt, fun, arg, timeout, tgt_type, ret, jid, kwarg, kwargs)
        out: dict = {}
        for mid, item in items:
            if item.get("failed"):
                if not (show or item.get("reason") == shape.NO_KEY):
                    continue
                data = shape.cli_missing(item, published.jid, self.rx_reasons)
            else:
                data = shape.returned(item)
            out[mid] = data if full_return else data.get("ret")
        for mid in published.minions:
            out.setdefault(mid, False)
        return out

    def cmd_cli(self, tgt: str | list, fun: str | list, arg: Sequence = (), timeout: float | None = None,
                tgt_type: str = "glob", ret: str = "", verbose: bool = False, kwarg: dict | None = None,
                progress: bool = False, **kwargs: Any) -> Iterator[dict]:
        """Yield `{id: {"ret", "retcode", "jid"}}` as minions return; with `verbose` (which prints the jid first)
        or `expect_minions`, then each missing minion as `{id: {"out": "no_return", "ret": "Minion did not
        return. [...]", "retcode": 1}}`.  `progress`: `{"minion_count", "return_count"}` before each return.
        A target that matches nothing yields `{}`."""
        show = bool(verbose or kwargs.get("expect_minions") or kwargs.get("show_timeout"))
        published, items = self._gather("cmd_cli", tgt, fun, arg, timeout, tgt_type, ret, "", kwarg, kwargs,
                                        then=self._banner if verbose else None)
        count = 0
        for mid, item in items:
            if item.get("failed"):
                if show or item.get("reason") == shape.NO_KEY:
                    count += 1
                    yield {mid: shape.cli_missing(item, published.jid, self.rx_reasons)}
                continue
            count += 1
            if progress:
                yield {"minion_count": len(published.minions), "return_count": count}
            yield {mid: shape.returned(item)}
        if not published.minions:
            yield {}

    def cmd_iter(self, tgt: str | list, fun: str | list, arg: Sequence = (), timeout: float | None = None,
                 tgt_type: str = "glob", ret: str = "", kwarg: dict | None = None, **kwargs: Any) -> Iterator[dict]:
        """Yield `{id: {"ret", "retcode", "jid"}}` as each minion returns; with `expect_minions=True`, then
        `{id: {"failed": True}}` for each that did not.  `yield_pub_data=True`: `{"jid", "minions"}` first.
        A target that matches nothing yields `{}`."""
        yield from self._iter_returns("cmd_iter", tgt, fun, arg, timeout, tgt_type, ret, kwarg, kwargs)

    def cmd_iter_no_block(self, tgt: str | list, fun: str | list, arg: Sequence = (), timeout: float | None = None,
                          tgt_type: str = "glob", ret: str = "", kwarg: dict | None = None, show_jid: bool = False,
                          verbose: bool = False, *, poll: float = 0.1, **kwargs: Any) -> Iterator[dict | None]:
        """Like cmd_iter, but yields None every `poll` seconds while nothing new has arrived (Salt: 0.01)."""
        yield from self._iter_returns("cmd_iter_no_block", tgt, fun, arg, timeout, tgt_type, ret, kwarg, kwargs,
                                      poll=poll)

    def _iter_returns(self, method: str, tgt: str | list, fun: str | list, arg: Sequence, timeout: float | None,
                      tgt_type: str, ret: str, kwarg: dict | None, kwargs: dict,
                      poll: float | None = None) -> Iterator[dict | None]:
        expect, pub_first = bool(kwargs.get("expect_minions")), bool(kwargs.get("yield_pub_data"))
        published, items = self._gather(method, tgt, fun, arg, timeout, tgt_type, ret, "", kwarg, kwargs, poll=poll)
        for step in items:
            if step is None:
                yield None
                continue
            if pub_first:
                pub_first = False
                yield shape.pub_data(published[0] if published else None)
            mid, item = step
            if not item.get("failed"):
                yield {mid: shape.returned(item)}
            elif expect or item.get("reason") == shape.NO_KEY:
                yield {mid: shape.iter_missing(item, self.rx_reasons)}
        if not published.minions:
            yield {}

    def cmd_async(self, tgt: str | list, fun: str | list, arg: Sequence = (), tgt_type: str = "glob",
                  ret: str = "", jid: str = "", kwarg: dict | None = None, **kwargs: Any) -> str | int:
        """Publish and return the jid at once (0 when the target matches nothing)."""
        return self.run_job(tgt, fun, arg, tgt_type, ret, jid=jid, kwarg=kwarg, **kwargs).get("jid", 0)

    def run_job(self, tgt: str | list, fun: str | list, arg: Sequence = (), tgt_type: str = "glob", ret: str = "",
                timeout: float | None = None, jid: str = "", kwarg: dict | None = None, listen: bool = False,
                **kwargs: Any) -> dict:
        """Publish without waiting: `{"jid", "minions"}` (the minions expected to return), `{}` when the target
        matches nothing.  `timeout` is Salt's wait for the master: rx waits for a busy master while it runs."""
        return shape.pub_data(self._publish("run_job", tgt, fun, arg, tgt_type, ret, jid, kwarg, kwargs))

    def pub(self, tgt: str | list, fun: str | list, arg: Sequence = (), tgt_type: str = "glob", ret: str = "",
            jid: str = "", timeout: float = 5, listen: bool = False, **kwargs: Any) -> dict:
        """Publish: `{"jid", "minions"}`; `{"jid": None, "minions": []}` when the target matches nothing."""
        kwarg = kwargs.pop("kwarg", None)
        pub = self._publish("pub", tgt, fun, arg, tgt_type, ret, jid, kwarg, kwargs)
        return {"jid": pub.jid if pub.minions else None, "minions": list(pub.minions)}

    def _publish(self, method: str, tgt: str | list, fun: str | list, arg: Sequence, tgt_type: str, ret: str,
                 jid: str, kwarg: dict | None, kwargs: dict) -> Published:
        args, kw = shape.condition_args(fun, arg, kwarg)
        self._returners(ret)
        return self._run(self._client.publish(tgt, fun, args, tgt_type=tgt_type, kwarg=kw, jid=jid or "",
                                              **self._options(method, kwargs, PUBLISH_OPTIONS)))

    def gather_job_info(self, jid: str, tgt: str | list, tgt_type: str, listen: bool = True, **kwargs: Any) -> dict:
        """Ask the minions of `tgt` whether they still run `jid` (`saltutil.find_job`): the probe's `run_job`
        answer; its returns are gathered with get_iter_returns or get_cli_returns."""
        kwargs.pop("gather_job_timeout", None)
        return self.run_job(tgt, "saltutil.find_job", [jid], tgt_type, **kwargs)

    def cmd_batch(self, tgt: str | list, fun: str | list, arg: Sequence = (), tgt_type: str = "glob", ret: str = "",
                  kwarg: dict | None = None, batch: str | int = "10%", **kwargs: Any) -> Iterator[dict]:
        """Rolling batches of at most `batch` minions (a number or "N%"): yields `{id: return}` as each returns
        (minions that do not return are left out, as in Salt).  `failhard`, `batch_wait`, `timeout`,
        `gather_job_timeout` as keywords."""
        args, kw = shape.condition_args(fun, arg, kwarg)
        self._returners(ret)
        opts = self._options("cmd_batch", kwargs, BATCH_OPTIONS)
        if "timeout" in opts:
            opts["timeout"] = shape.timeout_of(opts["timeout"])
        agen = self._client.cmd_batch(tgt, fun, args, batch=batch, tgt_type=tgt_type, kwarg=kw, **opts)
        with closing(self._iter(agen)) as steps:
            for item in steps:
                for mid, data in (item or {}).items():
                    if not data.get("failed"):
                        yield {mid: data.get("ret")}

    def cmd_subset(self, tgt: str | list, fun: str | list, arg: Sequence = (), tgt_type: str = "glob", ret: str = "",
                   kwarg: dict | None = None, subset: int = 3, cli: bool = False, progress: bool = False,
                   full_return: bool = False, **kwargs: Any) -> dict | Iterator[dict]:
        """`cmd` (with `cli`: `cmd_cli`) on `subset` minions picked at random among those of `tgt` that answer
        `sys.list_functions` with `fun` in it."""
        subset = kwargs.pop("sub", subset)
        listed = self.cmd(tgt, "sys.list_functions", tgt_type=tgt_type, **kwargs)
        funs = fun if isinstance(fun, list) else [fun]
        able = [m for m, names in listed.items() if isinstance(names, list) and all(f in names for f in funs)]
        random.shuffle(able)
        picked = sorted(able[:max(0, subset)])
        if cli:
            if not picked:
                return iter([{}])
            return self.cmd_cli(picked, fun, arg, tgt_type="list", ret=ret, kwarg=kwarg, progress=progress, **kwargs)
        if not picked:
            return {}
        return self.cmd(picked, fun, arg, tgt_type="list", ret=ret, kwarg=kwarg, full_return=full_return, **kwargs)

    def get_iter_returns(self, jid: str, minions: Sequence[str], timeout: float | None = None, tgt: str = "*",
                         tgt_type: str = "glob", expect_minions: bool = False, block: bool = True,
                         **kwargs: Any) -> Iterator[dict | None]:
        """The returns of a published job as cmd_iter yields them (those already stored first), probing the
        missing minions; `block=False`: None while nothing new comes.  `{}` for a jid the store does not hold."""
        if self.lookup(jid, ()) is None:
            yield {}
            return
        opts = self._options("get_iter_returns", kwargs, GATHER_OPTIONS - PUBLISH_OPTIONS)
        agen = self._client.get_iter_returns(jid, list(minions), timeout=shape.timeout_of(timeout), expect_minions=True,
                                             **opts)
        with closing(self._iter(agen, None if block else 0.1)) as steps:
            for item in steps:
                for mid, data in (item or {}).items():
                    if not data.get("failed"):
                        yield {mid: shape.returned(data)}
                    elif expect_minions:
                        yield {mid: shape.iter_missing(data, self.rx_reasons)}
                if item is None:
                    yield None

    def get_cli_returns(self, jid: str, minions: Sequence[str], timeout: float | None = None, tgt: str = "*",
                        tgt_type: str = "glob", verbose: bool = False, show_jid: bool = False,
                        **kwargs: Any) -> Iterator[dict]:
        """Yield `{id: {"ret": return}}` chunks of a published job: those stored first (one chunk), then each
        as it comes, until every one of `minions` returned or `timeout` seconds passed.  Missing minions are
        not reported."""
        if verbose:
            self._banner(Published(jid, [jid]))
        elif show_jid:
            print(f"jid: {jid}", flush=True)
        agen = self._client.event_returns(jid, list(minions), timeout=shape.timeout_of(timeout), stored=True)
        with closing(self._iter(agen)) as steps:
            for chunk in steps:
                if chunk:
                    yield shape.cached(chunk)

    def get_event_iter_returns(self, jid: str, minions: Sequence[str], timeout: float | None = None
                               ) -> Iterator[dict]:
        """Yield `{id: {"ret": return}}` as return events of `jid` come, until every one of `minions` returned or
        `timeout` seconds passed (returns stored before the call are not read: see get_cli_returns).  `{}`
        for a jid the store does not hold."""
        agen = self._client.event_returns(jid, list(minions), timeout=shape.timeout_of(timeout))
        with closing(self._iter(agen)) as steps:
            for chunk in steps:
                yield shape.cached(chunk or {})

    def get_cache_returns(self, jid: str) -> dict:
        """`{id: {"ret": return}}` of the returns the job store holds for `jid` (`{}` if none)."""
        found = self.lookup(jid)
        return shape.cached(found.returns) if found is not None else {}

    # ------------------------------------------------------------ rx's own

    def preview(self, tgt: str | list, **kw: Any) -> Published:
        """The minions a target would reach now (`Published` with an empty jid); publishes nothing."""
        return self._run(self._client.preview(tgt, **kw))

    def lookup(self, jid: str, ids: Sequence[str] | None = None) -> LookupReply | None:
        """The job's stored returns, read by the master; see AsyncLocalClient.lookup."""
        return self._run(self._client.lookup(jid, ids))


__all__ = ["LocalClient", "config_dir_of"]
