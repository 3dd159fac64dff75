"""LocalClient: publish jobs to the local master and gather the returns.

`AsyncLocalClient` is the asyncio API; `LocalClient` wraps it for ordinary
synchronous code.  Both subscribe to the job's return events before the job is
published (and confirm the subscription is live), so no return is lost.
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable, Iterator, Sequence

import zmq
import zmq.asyncio

from rx.config import MasterConfig, load_master_config
from rx.master.jobcache import DatabaseError, JobCache, UnknownJob
from rx.transport.ids import new_jid
from rx.transport.channels import EventBus, ReqClient, RequestTimeout, event_batch, event_subscriber, ipc, recv_multipart
from rx.targeting import TargetError, narrowed
from rx.transport.messages import ClearRequest, ProtocolError, PublishRequest, ReplyError, parse_reply

DEFAULT_GATHER_JOB_TIMEOUT = 3.0
NOT_STARTED = "not started: --failhard stopped the batch"
SYNC_TIMEOUT = 5.0


class ClientError(Exception):
    """Base of client errors; `exit_code` is what the CLI exits with (DESIGN §6)."""

    exit_code = 1


class MasterUnreachable(ClientError):
    exit_code = 5


class PermissionDenied(ClientError):
    exit_code = 5


class BadRequest(ClientError):
    exit_code = 2


@dataclass(frozen=True)
class Published:
    jid: str
    minions: list[str]
    no_grains: list[str] = field(default_factory=list)


@dataclass
class Missing:
    """A minion that was expected but did not return, and why."""

    id: str
    reason: str

    def as_return(self, jid: str = "") -> dict:
        return {"ret": f"Minion did not return. [{self.reason}]", "retcode": None, "failed": True,
                "reason": self.reason, "jid": jid}


@dataclass
class _Gather:
    expected: set[str]
    returned: set[str] = field(default_factory=set)
    answered_probe: set[str] = field(default_factory=set)


class AsyncLocalClient:
    """Talks to the master on this host through its local socket, as the master's user."""

    def __init__(self, config_dir: str | None = None, *, cfg: MasterConfig | None = None) -> None:
        self.cfg = cfg or load_master_config(config_dir)
        self._zctx: zmq.asyncio.Context | None = None
        self._req: ReqClient | None = None
        self._bus: EventBus | None = None
        self._jobs = JobCache(self.cfg.jobs_dir)

    async def __aenter__(self) -> "AsyncLocalClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        self._jobs.close()
        if self._req is not None:
            await self._req.aclose()
            self._req = None
        if self._bus is not None:
            self._bus.close()
            self._bus = None
        if self._zctx is not None:
            self._zctx.destroy(linger=0)
            self._zctx = None

    def _ctx(self) -> zmq.asyncio.Context:
        if self._zctx is None:
            if not os.path.exists(self.cfg.ret_ipc):
                raise MasterUnreachable(f"the master is not running (no socket at {self.cfg.ret_ipc}); "
                                        "start it with: rx-master")
            self._zctx = zmq.asyncio.Context()
        return self._zctx

    def _root_key(self) -> str:
        try:
            with open(self.cfg.root_key_path) as f:
                return f.read().strip()
        except PermissionError:
            raise PermissionDenied(f"cannot read {self.cfg.root_key_path}: run as the master's user (or root)") from None
        except FileNotFoundError:
            raise MasterUnreachable(f"no root key at {self.cfg.root_key_path}: is the master running?") from None

    # ------------------------------------------------------------ events

    async def _listen(self, prefixes: tuple[str, ...]) -> zmq.asyncio.Socket:
        """Subscribe, then prove the subscription is live with a round trip through the bus."""
        ctx = self._ctx()
        token = secrets.token_hex(8)
        sync_tag = f"rx/sync/{token}"
        sub = event_subscriber(ctx, self.cfg.event_pub_ipc, (*prefixes, sync_tag))
        if self._bus is None:
            self._bus = EventBus(ctx, self.cfg.event_pull_ipc)
        deadline = time.monotonic() + SYNC_TIMEOUT
        wait_ms = 1
        while time.monotonic() < deadline:
            await self._bus.fire(sync_tag, {})
            if await sub.poll(wait_ms):
                frames = await recv_multipart(sub)
                if frames[0] == sync_tag.encode():
                    sub.setsockopt(zmq.UNSUBSCRIBE, sync_tag.encode())
                    return sub
            wait_ms = min(wait_ms * 2, 50)
        sub.close(linger=0)
        raise MasterUnreachable(f"the master's event bus at {self.cfg.event_pub_ipc} does not answer")

    # ------------------------------------------------------------ publish

    async def _request(self, cmd: str, load: dict, timeout: float) -> dict:
        ctx = self._ctx()
        if self._req is None:
            self._req = ReqClient(ctx, ipc(self.cfg.ret_ipc))
        try:
            reply = await self._req.request(ClearRequest(cmd, load).to_wire(), timeout=timeout)
            return parse_reply(reply)
        except RequestTimeout:
            self._req.reset()
            raise MasterUnreachable(f"the master did not answer within {timeout:g}s") from None
        except ReplyError as exc:
            if exc.type == "permission":
                raise PermissionDenied(exc.message) from None
            raise BadRequest(exc.message) from None
        except ProtocolError as exc:
            raise MasterUnreachable(f"unexpected answer from the master: {exc}") from None

    async def publish(self, tgt: str | list, fun: str | list, arg: Sequence = (), *, tgt_type: str = "glob",
                      kwarg: dict | None = None, jid: str = "", timeout: float | None = None,
                      delimiter: str = ":") -> Published:
        """Publish a job; returns the jid and the minions expected to answer (without waiting)."""
        reply = await self._request("publish", self._load(tgt, fun, arg, tgt_type, kwarg, jid, timeout, delimiter),
                                    timeout=self.cfg.timeout)
        minions = reply.get("minions")
        if not isinstance(reply.get("jid"), str) or not isinstance(minions, list):
            raise MasterUnreachable("malformed publish reply from the master")
        no_grains = reply.get("no_grains") if isinstance(reply.get("no_grains"), list) else []
        return Published(jid=reply["jid"], minions=[m for m in minions if isinstance(m, str)],
                         no_grains=[m for m in no_grains if isinstance(m, str)])

    async def preview(self, tgt: str | list, *, tgt_type: str = "glob", delimiter: str = ":") -> Published:
        """The minions a target would reach now; publishes nothing (jid is empty)."""
        reply = await self._request("preview", self._load(tgt, "test.ping", (), tgt_type, None, "", None, delimiter),
                                    timeout=self.cfg.timeout)
        return Published(jid="", minions=[m for m in reply.get("minions", []) if isinstance(m, str)],
                         no_grains=[m for m in reply.get("no_grains", []) if isinstance(m, str)])

    def _load(self, tgt: str | list, fun: str | list, arg: Sequence, tgt_type: str, kwarg: dict | None, jid: str,
              timeout: float | None, delimiter: str) -> dict:
        return PublishRequest(key=self._root_key(), tgt=tgt, fun=fun, arg=list(arg), kwarg=dict(kwarg or {}),
                              tgt_type=tgt_type, jid=jid, user=_user(), timeout=float(timeout or 0),
                              delimiter=delimiter).to_wire()

    async def cmd_async(self, tgt: str | list, fun: str | list, arg: Sequence = (), *, tgt_type: str = "glob",
                        kwarg: dict | None = None, delimiter: str = ":") -> str:
        """Publish and return the jid at once; returns are in the job cache (rx-run jobs.lookup_jid)."""
        return (await self.publish(tgt, fun, arg, tgt_type=tgt_type, kwarg=kwarg, delimiter=delimiter)).jid

    async def run_job(self, tgt: str | list, fun: str | list, arg: Sequence = (), *, tgt_type: str = "glob",
                      kwarg: dict | None = None, delimiter: str = ":") -> Published:
        """Publish without waiting; returns jid and expected minions (gather later with get_iter_returns)."""
        return await self.publish(tgt, fun, arg, tgt_type=tgt_type, kwarg=kwarg, delimiter=delimiter)

    async def cmd_iter(self, tgt: str | list, fun: str | list, arg: Sequence = (), *, timeout: float | None = None,
                       tgt_type: str = "glob", kwarg: dict | None = None, expect_minions: bool = False,
                       gather_job_timeout: float = DEFAULT_GATHER_JOB_TIMEOUT, delimiter: str = ":",
                       published: list[Published] | None = None) -> AsyncIterator[dict]:
        """Yield `{id: {"ret", "retcode", "success", "jid"}}` as each minion returns.

        After `timeout` seconds the missing minions are probed with `jobs.find`;
        those still running extend the wait.  With `expect_minions` each minion
        that never returns is yielded last as `{id: {"ret": "Minion did not
        return. [reason]", "failed": True, "reason": ..., "retcode": None}}`,
        reason one of "not connected", "no response", "no grains cached".
        If `published` is a list, the Published record is appended to it first.
        """
        jid = new_jid()
        sub = await self._listen((f"rx/job/{jid}/ret/",))
        try:
            pub = await self.publish(tgt, fun, arg, tgt_type=tgt_type, kwarg=kwarg, jid=jid, delimiter=delimiter)
            if published is not None:
                published.append(pub)
            async for item in self._gather(sub, pub, timeout, gather_job_timeout, expect_minions):
                yield item
        finally:
            sub.close(linger=0)

    async def get_iter_returns(self, jid: str, minions: Sequence[str], *, timeout: float | None = None,
                               expect_minions: bool = False,
                               gather_job_timeout: float = DEFAULT_GATHER_JOB_TIMEOUT) -> AsyncIterator[dict]:
        """Gather the returns of an already published job (from run_job or cmd_async), like cmd_iter."""
        sub = await self._listen((f"rx/job/{jid}/ret/",))
        try:
            pub = Published(jid=jid, minions=list(minions), no_grains=self._cached_no_grains(jid))
            async for item in self._gather(sub, pub, timeout, gather_job_timeout, expect_minions, from_cache=True):
                yield item
        finally:
            sub.close(linger=0)

    async def get_cli_returns(self, jid: str, minions: Sequence[str], *, timeout: float | None = None) -> dict:
        """`{id: return}` of an already published job, missing minions included as Salt's CLI shows them."""
        out: dict = {}
        async for item in self.get_iter_returns(jid, minions, timeout=timeout, expect_minions=True):
            for mid, r in item.items():
                out[mid] = r["ret"]
        return out

    def _cached_no_grains(self, jid: str) -> list[str]:
        try:
            return list(self._jobs.load(jid).get("no_grains", []))
        except (OSError, UnknownJob):
            return []

    def _cached_returns(self, jid: str) -> dict[str, dict]:
        """Returns already stored for `jid` (for jobs gathered after publishing; a new jid has none)."""
        try:
            return self._jobs.returns(jid)
        except (OSError, UnknownJob, DatabaseError):
            return {}

    async def _gather(self, sub: zmq.asyncio.Socket, pub: Published, timeout: float | None,
                      gather_job_timeout: float, expect_minions: bool,
                      from_cache: bool = False) -> AsyncIterator[dict]:
        """Yield returns as they come; `from_cache` first yields those stored before we subscribed."""
        timeout = self.cfg.timeout if timeout is None else timeout
        state = _Gather(expected=set(pub.minions))
        for minion_id, data in (self._cached_returns(pub.jid) if from_cache else {}).items():
            state.returned.add(minion_id)
            yield {minion_id: _as_return(pub.jid, data)}
        pending = state.expected - state.returned
        deadline = time.monotonic() + timeout
        giving_up = False
        while pending and not giving_up:
            remaining = deadline - time.monotonic()
            if remaining > 0:
                queued = await event_batch(sub, remaining)
            else:
                queued = await event_batch(sub, 0.001)  # returns that came in meanwhile count before any probe
                if not queued:
                    giving_up = True
                    if gather_job_timeout > 0:
                        answers = await self._probe(sorted(pending), "jobs.find", [pub.jid], gather_job_timeout)
                        state.answered_probe |= answers.keys()
                        giving_up = not any(isinstance(r, dict) and r for r in answers.values())
                        deadline = time.monotonic() + timeout
                    queued = await event_batch(sub, 0.001)  # and those that came in during the probe
            for tag, data in queued:
                minion_id = tag.rsplit("/", 1)[-1]
                if minion_id in state.returned:
                    continue
                state.returned.add(minion_id)
                state.expected.add(minion_id)
                pending.discard(minion_id)
                yield {minion_id: _as_return(pub.jid, data)}
        if expect_minions:
            for m in sorted(state.expected - state.returned):
                if m in pub.no_grains:
                    reason = "no grains cached"
                else:
                    reason = "no response" if m in state.answered_probe else "not connected"
                yield {m: Missing(m, reason).as_return(pub.jid)}

    async def find_job(self, jid: str, minions: list[str], timeout: float = DEFAULT_GATHER_JOB_TIMEOUT
                       ) -> dict[str, dict]:
        """Ask `minions` whether `jid` is still running; returns those that say it is."""
        answers = await self._probe(minions, "jobs.find", [jid], timeout)
        return {m: r for m, r in answers.items() if isinstance(r, dict) and r}

    async def _probe(self, minions: list[str], fun: str, arg: list, timeout: float) -> dict[str, Any]:
        if not minions:
            return {}
        out: dict[str, Any] = {}
        async for item in self.cmd_iter(minions, fun, arg, timeout=timeout, tgt_type="list", expect_minions=False,
                                        gather_job_timeout=0):
            for mid, r in item.items():
                out[mid] = r["ret"]
        return out

    async def cmd(self, tgt: str | list, fun: str | list, arg: Sequence = (), *, timeout: float | None = None,
                  tgt_type: str = "glob", kwarg: dict | None = None, full_return: bool = False,
                  delimiter: str = ":", gather_job_timeout: float = DEFAULT_GATHER_JOB_TIMEOUT) -> dict:
        """Run a job and return `{id: return}` for the minions that returned (full dicts with full_return)."""
        out: dict = {}
        async for item in self.cmd_iter(tgt, fun, arg, timeout=timeout, tgt_type=tgt_type, kwarg=kwarg,
                                        expect_minions=False, delimiter=delimiter,
                                        gather_job_timeout=gather_job_timeout):
            for mid, r in item.items():
                out[mid] = r if full_return else r["ret"]
        return out

    async def cmd_subset(self, tgt: str | list, fun: str | list, arg: Sequence = (), *, subset: int = 1,
                         tgt_type: str = "glob", kwarg: dict | None = None, timeout: float | None = None,
                         delimiter: str = ":", full_return: bool = False,
                         gather_job_timeout: float = DEFAULT_GATHER_JOB_TIMEOUT) -> dict:
        """Run on `subset` minions picked at random from those the target matches (each still checks the
        target itself, so one listed only for lack of cached grains does not run it unless it matches)."""
        picked = await self.pick_subset(tgt, subset, tgt_type=tgt_type, delimiter=delimiter)
        if not picked:
            return {}
        return await self.cmd(narrow(tgt, tgt_type, picked), fun, arg, timeout=timeout, tgt_type="compound",
                              kwarg=kwarg, full_return=full_return, delimiter=delimiter,
                              gather_job_timeout=gather_job_timeout)

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
                        published: list[Published] | None = None) -> AsyncIterator[dict]:
        """Rolling batches: at most `batch` minions (a number or "N%") run at once; each return frees a slot.

        With `failhard`, no new minion is started after the first failure.
        `progress` is called with a BatchProgress after every change; `published`, if a list, gets the
        Published record of every per-minion job as it starts.
        """
        matched = (await self.preview(tgt, tgt_type=tgt_type, delimiter=delimiter)).minions
        size = batch_size(batch, len(matched))
        narrow(tgt, tgt_type, matched)  # every minion can be addressed, or nothing starts
        queue: asyncio.Queue = asyncio.Queue()
        todo = list(matched)
        state = BatchProgress(total=len(matched))

        async def run_one(minion_id: str) -> None:
            try:
                async for item in self.cmd_iter(narrow(tgt, tgt_type, [minion_id]), fun, arg, timeout=timeout,
                                                tgt_type="compound", kwarg=kwarg, delimiter=delimiter,
                                                gather_job_timeout=gather_job_timeout, expect_minions=True,
                                                published=published):
                    await queue.put(item)
            except Exception as exc:  # the batch stops and says why, instead of silently skipping a minion
                await queue.put(exc)
            finally:
                await queue.put(None)

        tasks: set[asyncio.Task] = set()
        try:
            while todo or state.running:
                while todo and state.running < size and not (failhard and state.failed):
                    tasks.add(asyncio.create_task(run_one(todo.pop(0))))
                    state.running += 1
                if progress:
                    progress(state)
                if not state.running:
                    break
                item = await queue.get()
                if isinstance(item, Exception):
                    raise item
                if item is None:
                    state.running -= 1
                    state.done += 1
                    if batch_wait > 0 and todo:
                        await asyncio.sleep(batch_wait)
                    continue
                for r in item.values():
                    if r.get("failed") or r.get("retcode") != 0:
                        state.failed += 1
                yield item
        finally:
            for t in tasks:
                t.cancel()
        for minion_id in todo:
            yield {minion_id: Missing(minion_id, NOT_STARTED).as_return()}
        if progress:
            progress(state)


@dataclass
class BatchProgress:
    total: int
    done: int = 0
    running: int = 0
    failed: int = 0


def narrow(tgt: str | list, tgt_type: str, ids: list[str]) -> str:
    """The target restricted to `ids` (see targeting.narrowed); BadRequest when it cannot be written."""
    odd = [i for i in ids if any(c in i for c in ",()") or any(c.isspace() for c in i)]
    if odd:
        raise BadRequest(f"minion id {odd[0]!r} cannot be addressed in a batch or subset (it holds ',', '(', ')' "
                         "or white space)")
    try:
        return narrowed(tgt, tgt_type, ids)
    except TargetError as exc:
        raise BadRequest(str(exc)) from None


def batch_size(spec: str | int, matched: int) -> int:
    """`N` or `N%` of the matched minions, at least 1; BadRequest for anything else."""
    text = str(spec).strip()
    try:
        if text.endswith("%"):
            pct = float(text[:-1])
            if not 0 < pct <= 100:
                raise ValueError
            return max(1, int(matched * pct / 100))
        n = int(text)
        if n < 1:
            raise ValueError
        return n
    except ValueError:
        raise BadRequest(f"batch size {spec!r} must be a whole number >= 1 or a percentage like 25%") from None


def _as_return(jid: str, data: dict) -> dict:
    return {"ret": data.get("return"), "retcode": data.get("retcode"), "success": data.get("success"), "jid": jid}


def _user() -> str:
    try:
        import pwd
        return pwd.getpwuid(os.getuid()).pw_name
    except (KeyError, ImportError):
        return str(os.getuid())


class LocalClient:
    """Synchronous LocalClient for scripts and long-running programs (not inside a running event loop).

    Same methods and keyword arguments as AsyncLocalClient; one client runs
    any number of jobs; use it as a context manager (or call close()) so its
    sockets are released.
    """

    def __init__(self, config_dir: str | None = None, *, cfg: MasterConfig | None = None) -> None:
        self._loop = asyncio.new_event_loop()
        self._client = AsyncLocalClient(config_dir, cfg=cfg)

    def __enter__(self) -> "LocalClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if not self._loop.is_closed():
            self._loop.run_until_complete(self._client.aclose())
            self._loop.close()

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
            if step is not None and not step.done():  # the caller stopped while a step was waiting: finish it before closing
                step.cancel()
                self._run(asyncio.gather(step, return_exceptions=True))
            self._run(agen.aclose())

    def cmd(self, tgt: str | list, fun: str | list, arg: Sequence = (), **kw: Any) -> dict:
        """`{id: return}`; see AsyncLocalClient.cmd."""
        return self._run(self._client.cmd(tgt, fun, arg, **kw))

    def cmd_async(self, tgt: str | list, fun: str | list, arg: Sequence = (), **kw: Any) -> str:
        return self._run(self._client.cmd_async(tgt, fun, arg, **kw))

    def run_job(self, tgt: str | list, fun: str | list, arg: Sequence = (), **kw: Any) -> Published:
        return self._run(self._client.run_job(tgt, fun, arg, **kw))

    def preview(self, tgt: str | list, **kw: Any) -> Published:
        return self._run(self._client.preview(tgt, **kw))

    def cmd_subset(self, tgt: str | list, fun: str | list, arg: Sequence = (), **kw: Any) -> dict:
        return self._run(self._client.cmd_subset(tgt, fun, arg, **kw))

    def get_cli_returns(self, jid: str, minions: Sequence[str], **kw: Any) -> dict:
        return self._run(self._client.get_cli_returns(jid, minions, **kw))

    def cmd_iter(self, tgt: str | list, fun: str | list, arg: Sequence = (), **kw: Any) -> Iterator[dict]:
        return self._iter(self._client.cmd_iter(tgt, fun, arg, **kw))  # type: ignore[return-value]

    def cmd_iter_no_block(self, tgt: str | list, fun: str | list, arg: Sequence = (), poll: float = 0.1,
                          **kw: Any) -> Iterator[dict | None]:
        """Like cmd_iter, but yields None every `poll` seconds while nothing new has arrived."""
        return self._iter(self._client.cmd_iter(tgt, fun, arg, **kw), poll=poll)

    def cmd_batch(self, tgt: str | list, fun: str | list, arg: Sequence = (), **kw: Any) -> Iterator[dict]:
        return self._iter(self._client.cmd_batch(tgt, fun, arg, **kw))  # type: ignore[return-value]

    def get_iter_returns(self, jid: str, minions: Sequence[str], **kw: Any) -> Iterator[dict]:
        return self._iter(self._client.get_iter_returns(jid, minions, **kw))  # type: ignore[return-value]
