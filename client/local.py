"""LocalClient: publish jobs to the local master and gather the returns.

`AsyncLocalClient` is the asyncio API, with rx's typed results; `LocalClient` (rx.client.synclocal)
wraps it for ordinary synchronous code, in the shapes of Salt's LocalClient.  Both subscribe to the
job's return events before the job is published (and confirm the subscription is live); and before a
minion is reported missing, the job store (read through the master's `lookup`, rx.client.masterlink)
is the judge, so an event lost on the bus never turns a stored return into a missing one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from typing import Any, AsyncIterator, Callable, Sequence

from rx.client.batch import BatchProgress, batch_size, narrow, run_batch
from rx.client.gather import DEFAULT_GATHER_JOB_TIMEOUT, default_job_expire, gather, running
from rx.client.masterlink import MasterLink, NoAnswer
from rx.client.results import (NOT_STARTED, BadRequest, ClientError, MasterError, MasterUnreachable, Missing,
                               PermissionDenied, Published)
from rx.client.termsafe import escape_controls
from rx.transport import messages as m
from rx.transport.errors import ProtocolError
from rx.transport.ids import is_jid
from rx.transport.jidclock import JID_CLOCK_FILE, JidClock
from rx.transport.messages import PublishRequest
from rx.transport.replies import PreviewReply, PublishReply
from rx.transport.roles import EventSource

__all__ = ["AsyncLocalClient", "LocalClient", "BatchProgress", "Published", "Missing", "ClientError", "BadRequest",
           "MasterUnreachable", "MasterError", "PermissionDenied", "NOT_STARTED", "batch_size", "narrow"]


class AsyncLocalClient(MasterLink):
    _jid_clock: JidClock | None = None

    def _new_jid(self) -> str:
        """A jid from the master host's jid clock (rx.transport.jidclock), which every local client and worker share."""
        if self._jid_clock is None:
            self._jid_clock = JidClock(os.path.join(self.cfg.cachedir, JID_CLOCK_FILE), self.cfg.jid_node)
        return self._jid_clock.next()

    """Publishes jobs to the master on this host and gathers their returns (asyncio)."""

    async def __aenter__(self) -> "AsyncLocalClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------ publish

    async def publish(self, tgt: str | list, fun: str | list, arg: Sequence = (), *, tgt_type: str = "glob",
                      kwarg: dict | None = None, jid: str = "", timeout: float | None = None,
                      delimiter: str = ":", private: bool = False, job_expire: float | None = None,
                      max_wait: float | None = None) -> Published:
        """Publish a job; returns the jid and the minions expected to answer (without waiting for returns).
        `private`: sealed for each expected minion alone, however many (the master does so anyway for at most
        its `private_publish_max`).  `job_expire`: seconds after which minions refuse the job if it has not
        reached them yet (at most 300, the minions' freshness window; None or 0: that window)."""
        load = self._load(tgt, fun, arg, tgt_type, kwarg, jid, timeout, delimiter, private, job_expire)
        try:
            raw = await self._request(m.PUBLISH, load, max_wait)
        except NoAnswer as exc:
            if jid:
                raise NoAnswer(f"{exc}; the job may have been published: rx-run jobs.lookup_jid {jid}") from None
            raise
        reply: PublishReply = self._reply(raw, PublishReply)
        if reply.warning:
            logging.getLogger("rx.client").warning("%s", escape_controls(reply.warning))
        return Published(jid=reply.jid, minions=reply.minions, no_grains=reply.no_grains, warning=reply.warning)

    async def preview(self, tgt: str | list, *, tgt_type: str = "glob", delimiter: str = ":") -> Published:
        """The minions a target would reach now; publishes nothing (jid is empty)."""
        raw = await self._request(m.PREVIEW, self._load(tgt, "test.ping", (), tgt_type, None, "", None, delimiter))
        reply: PreviewReply = self._reply(raw, PreviewReply)
        return Published(jid="", minions=reply.minions, no_grains=reply.no_grains)

    def _load(self, tgt: str | list, fun: str | list, arg: Sequence, tgt_type: str, kwarg: dict | None, jid: str,
              timeout: float | None, delimiter: str, private: bool = False, job_expire: float | None = None) -> dict:
        return PublishRequest(key=self._root_key(), tgt=tgt, fun=fun, arg=list(arg), kwarg=dict(kwarg or {}),
                              tgt_type=tgt_type, jid=jid, user=_user(), timeout=float(timeout or 0),
                              delimiter=delimiter, private=private, job_expire=float(job_expire or 0)).to_wire()

    async def cmd_async(self, tgt: str | list, fun: str | list, arg: Sequence = (), *, tgt_type: str = "glob",
                        kwarg: dict | None = None, delimiter: str = ":", private: bool = False,
                        job_expire: float | None = None) -> str:
        """Publish and return the jid at once; returns are in the job cache (rx-run jobs.lookup_jid)."""
        return (await self.run_job(tgt, fun, arg, tgt_type=tgt_type, kwarg=kwarg, delimiter=delimiter,
                                   private=private, job_expire=job_expire)).jid

    async def run_job(self, tgt: str | list, fun: str | list, arg: Sequence = (), *, tgt_type: str = "glob",
                      kwarg: dict | None = None, delimiter: str = ":", private: bool = False,
                      job_expire: float | None = None) -> Published:
        """Publish without waiting; returns jid and expected minions (gather later with get_iter_returns).
        `job_expire`: see publish (nothing waits, so by default the job expires only with the window)."""
        return await self.publish(tgt, fun, arg, tgt_type=tgt_type, kwarg=kwarg, delimiter=delimiter, private=private,
                                  job_expire=job_expire)

    async def cmd_iter(self, tgt: str | list, fun: str | list, arg: Sequence = (), *, timeout: float | None = None,
                       tgt_type: str = "glob", kwarg: dict | None = None, expect_minions: bool = False,
                       gather_job_timeout: float = DEFAULT_GATHER_JOB_TIMEOUT, delimiter: str = ":",
                       published: list[Published] | None = None, max_wait: float | None = None,
                       private: bool = False, job_expire: float | None = None, jid: str = "") -> AsyncIterator[dict]:
        """Yield `{id: {"ret", "retcode", "success", "jid"}}` as each minion returns.

        After `timeout` seconds with no new return, the returns the job store holds
        are taken and the missing minions are probed with `jobs.find`; those still
        running (or silent but heard from by the master) extend the wait, up to
        `max_wait` seconds in all (default: the `max_wait_seconds` setting; see
        rx.client.gather).  With
        `expect_minions` each minion that never returns is yielded last as
        `{id: {"ret": "Minion did not return. [reason]", "failed": True,
        "reason": ..., "retcode": None}}`, reason one of "not connected",
        "no response", "no grains cached", "still running".
        If `published` is a list, the Published record is appended to it first.  `private`: see publish.
        `job_expire` (see publish) defaults to the time this gather waits before it reports a minion missing
        (rx.client.gather.default_job_expire), so a minion reported missing never runs the job later.
        `jid`: the job's id (20 digits, not used before); default: a new one from the jid clock.
        """
        timeout = self.cfg.timeout if timeout is None else timeout
        max_wait = self.cfg.max_wait_seconds if max_wait is None else max_wait
        if job_expire is None:
            job_expire = default_job_expire(timeout, gather_job_timeout, max_wait)
        if jid and not is_jid(jid):
            raise BadRequest(f"jid {jid!r} is not a job id (20 digits)")
        jid = jid or self._new_jid()
        sub = await self._listen(jid, max_wait)
        try:
            try:
                pub = await self.publish(tgt, fun, arg, tgt_type=tgt_type, kwarg=kwarg, jid=jid, delimiter=delimiter,
                                         private=private, job_expire=job_expire, max_wait=max_wait)
            except asyncio.CancelledError:
                if published is not None:  # interrupted mid-publish: the master may have taken the job
                    published.append(Published(jid, [], warning="interrupted before the master confirmed the job"))
                raise
            if published is not None:
                published.append(pub)
            async for item in self._gather(sub, pub, timeout, gather_job_timeout, max_wait, expect_minions):
                yield item
        finally:
            sub.close()

    async def get_iter_returns(self, jid: str, minions: Sequence[str], *, timeout: float | None = None,
                               expect_minions: bool = False, gather_job_timeout: float = DEFAULT_GATHER_JOB_TIMEOUT,
                               max_wait: float | None = None) -> AsyncIterator[dict]:
        """Gather the returns of an already published job (from run_job or cmd_async), like cmd_iter."""
        sub = await self._listen(jid, max_wait)
        try:
            stored = await self.lookup(jid, ())
            pub = Published(jid=jid, minions=list(minions), no_grains=stored.no_grains if stored else [])
            async for item in self._gather(sub, pub, timeout, gather_job_timeout, max_wait, expect_minions,
                                           from_cache=True):
                yield item
        finally:
            sub.close()

    async def get_cli_returns(self, jid: str, minions: Sequence[str], *, timeout: float | None = None) -> dict:
        """`{id: return}` of an already published job, missing minions included as Salt's CLI shows them."""
        out: dict = {}
        async for item in self.get_iter_returns(jid, minions, timeout=timeout, expect_minions=True):
            for mid, r in item.items():
                out[mid] = r["ret"]
        return out

    async def event_returns(self, jid: str, minions: Sequence[str], *, timeout: float | None = None,
                            stored: bool = False) -> AsyncIterator[dict]:
        """A published job's returns as their events come, `{id: return event}` (`return`, `retcode`, `success`,
        ...) per minion, until each of `minions` returned or `timeout` seconds (default: the config's) have
        passed since the call: no probe, no missing minions (the gather with those is get_iter_returns).
        With `stored`, the returns the job store already holds come first, in one dict.  A job the store does
        not hold yields one `{}`, and nothing more."""
        deadline = time.monotonic() + (self.cfg.timeout if timeout is None else timeout)
        sub = await self._listen(jid)
        try:
            found = await self.lookup(jid, None if stored else ())
            if found is None:
                yield {}
                return
            seen = set(found.returns)
            if found.returns:
                yield dict(found.returns)
            from rx.transport.events import JobRetEvent
            while not set(minions) <= seen and (left := deadline - time.monotonic()) > 0:
                for _tag, data in await sub.batch(left):
                    try:
                        minion_id = JobRetEvent.from_wire(data).id
                    except ProtocolError:
                        continue
                    if minion_id not in seen:
                        seen.add(minion_id)
                        yield {minion_id: data}
        finally:
            sub.close()

    def _gather(self, sub: EventSource, pub: Published, timeout: float | None, gather_job_timeout: float,
                max_wait: float | None, expect_minions: bool, from_cache: bool = False) -> AsyncIterator[dict]:
        return gather(self, sub, pub, timeout=self.cfg.timeout if timeout is None else timeout,
                      gather_job_timeout=gather_job_timeout, expect_minions=expect_minions, from_cache=from_cache,
                      max_wait=self.cfg.max_wait_seconds if max_wait is None else max_wait)

    async def find_job(self, jid: str, minions: list[str], timeout: float = DEFAULT_GATHER_JOB_TIMEOUT
                       ) -> dict[str, dict]:
        """Ask `minions` whether `jid` is still running; returns those that say it is (with its job info)."""
        return running(await self._probe(minions, "jobs.find", [jid], timeout), minions)

    async def _probe(self, minions: list[str], fun: str, arg: list, timeout: float,
                     max_wait: float | None = None) -> dict[str, Any]:
        """`{id: answer}` from the asked `minions` only: an answer from any other minion is not counted.  A probe
        only reads a minion's state, so it does not expire (job_expire=0: the minions' window): a busy minion
        that reads it late still answers, instead of being taken for one that is not connected."""
        if not minions:
            return {}
        asked = set(minions)
        out: dict[str, Any] = {}
        async for item in self.cmd_iter(minions, fun, arg, timeout=timeout, tgt_type="list", expect_minions=False,
                                        gather_job_timeout=0, max_wait=max_wait, job_expire=0):
            out.update((mid, r["ret"]) for mid, r in item.items() if mid in asked)
        return out

    async def cmd(self, tgt: str | list, fun: str | list, arg: Sequence = (), *, timeout: float | None = None,
                  tgt_type: str = "glob", kwarg: dict | None = None, full_return: bool = False,
                  delimiter: str = ":", gather_job_timeout: float = DEFAULT_GATHER_JOB_TIMEOUT,
                  max_wait: float | None = None, private: bool = False, job_expire: float | None = None,
                  jid: str = "") -> dict:
        """Run a job and return `{id: return}` for the minions that returned (full dicts with full_return)."""
        out: dict = {}
        async for item in self.cmd_iter(tgt, fun, arg, timeout=timeout, tgt_type=tgt_type, kwarg=kwarg,
                                        expect_minions=False, delimiter=delimiter,
                                        gather_job_timeout=gather_job_timeout, max_wait=max_wait,
                                        private=private, job_expire=job_expire, jid=jid):
            for mid, r in item.items():
                out[mid] = r if full_return else r["ret"]
        return out

    async def cmd_subset(self, tgt: str | list, fun: str | list, arg: Sequence = (), *, subset: int = 1,
                         tgt_type: str = "glob", kwarg: dict | None = None, timeout: float | None = None,
                         delimiter: str = ":", full_return: bool = False,
                         gather_job_timeout: float = DEFAULT_GATHER_JOB_TIMEOUT, max_wait: float | None = None,
                         job_expire: float | None = None) -> dict:
        """Run on `subset` minions picked at random from those the target matches (each still checks the
        target itself, so one listed only for lack of cached grains does not run it unless it matches)."""
        picked = await self.pick_subset(tgt, subset, tgt_type=tgt_type, delimiter=delimiter)
        if not picked:
            return {}
        return await self.cmd(narrow(tgt, tgt_type, picked), fun, arg, timeout=timeout, tgt_type="compound",
                              kwarg=kwarg, full_return=full_return, delimiter=delimiter,
                              gather_job_timeout=gather_job_timeout, max_wait=max_wait, job_expire=job_expire)

    async def pick_subset(self, tgt: str | list, subset: int, *, tgt_type: str = "glob",
                          delimiter: str = ":") -> list[str]:
        if subset < 1:
            raise BadRequest("subset must be at least 1")
        matched = (await self.preview(tgt, tgt_type=tgt_type, delimiter=delimiter)).minions
        return sorted(random.sample(matched, min(subset, len(matched))))

    async def cmd_batch(self, tgt: str | list, fun: str | list, arg: Sequence = (), *, batch: str | int = "10%",
                        tgt_type: str = "glob", kwarg: dict | None = None, timeout: float | None = None,
                        batch_wait: float = 0.0, failhard: bool = False, delimiter: str = ":",
                        gather_job_timeout: float = DEFAULT_GATHER_JOB_TIMEOUT,
                        progress: Callable[[BatchProgress], None] | None = None,
                        published: list[Published] | None = None, max_wait: float | None = None,
                        private: bool = False, job_expire: float | None = None) -> AsyncIterator[dict]:
        """Rolling batches: at most `batch` minions (a number or "N%") run at once; each return frees a slot.

        With `failhard`, no new minion is started after the first failure.
        `progress` is called with a BatchProgress after every change; `published`, if a list, gets the
        Published record of every per-minion job as it starts.
        """
        async for item in run_batch(self, tgt, fun, arg, batch=batch, tgt_type=tgt_type, kwarg=kwarg, timeout=timeout,
                                    batch_wait=batch_wait, failhard=failhard, delimiter=delimiter,
                                    gather_job_timeout=gather_job_timeout, progress=progress, published=published,
                                    max_wait=max_wait, private=private, job_expire=job_expire):
            yield item


def _user() -> str:
    try:
        import pwd
        return pwd.getpwuid(os.getuid()).pw_name
    except (KeyError, ImportError):
        return str(os.getuid())


def __getattr__(name: str) -> Any:
    """`rx.client.local.LocalClient`: the Salt-shaped sync client of rx.client.synclocal (which imports this one)."""
    if name == "LocalClient":
        from rx.client.synclocal import LocalClient
        return LocalClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
