"""LocalClient: publish jobs to the local master and gather the returns.

`AsyncLocalClient` is the asyncio API; `LocalClient` wraps it for ordinary
synchronous code.  Both subscribe to the job's return events before the job is
published (and confirm the subscription is live), so no return is lost.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Iterator, Sequence

import zmq
import zmq.asyncio

from rx.config import MasterConfig, load_master_config
from rx.master.jobcache import new_jid
from rx.transport.channels import EventBus, ReqClient, RequestTimeout, event_subscriber, ipc, iter_events
from rx.transport.messages import ClearRequest, ProtocolError, PublishRequest, ReplyError, parse_reply

DEFAULT_GATHER_JOB_TIMEOUT = 3.0
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


@dataclass
class Missing:
    """A minion that was expected but did not return, and why."""

    id: str
    reason: str

    def as_return(self) -> dict:
        return {"ret": f"Minion did not return. [{self.reason}]", "retcode": None, "failed": True,
                "reason": self.reason}


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

    async def __aenter__(self) -> "AsyncLocalClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
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
        while time.monotonic() < deadline:
            await self._bus.fire(sync_tag, {})
            if await sub.poll(50):
                frames = await sub.recv_multipart()
                if frames[0] == sync_tag.encode():
                    sub.setsockopt(zmq.UNSUBSCRIBE, sync_tag.encode())
                    return sub
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
                      kwarg: dict | None = None, jid: str = "", timeout: float | None = None) -> Published:
        """Publish a job; returns the jid and the minions expected to answer (without waiting)."""
        req = PublishRequest(key=self._root_key(), tgt=tgt, fun=fun, arg=list(arg), kwarg=dict(kwarg or {}),
                             tgt_type=tgt_type, jid=jid, user=_user(), timeout=float(timeout or 0))
        reply = await self._request("publish", req.to_wire(), timeout=self.cfg.timeout)
        minions = reply.get("minions")
        if not isinstance(reply.get("jid"), str) or not isinstance(minions, list):
            raise MasterUnreachable("malformed publish reply from the master")
        return Published(jid=reply["jid"], minions=[m for m in minions if isinstance(m, str)])

    async def cmd_async(self, tgt: str | list, fun: str | list, arg: Sequence = (), *, tgt_type: str = "glob",
                        kwarg: dict | None = None) -> str:
        """Publish and return the jid at once; returns are in the job cache."""
        return (await self.publish(tgt, fun, arg, tgt_type=tgt_type, kwarg=kwarg)).jid

    async def run_job(self, tgt: str | list, fun: str | list, arg: Sequence = (), *, tgt_type: str = "glob",
                      kwarg: dict | None = None) -> Published:
        """Alias of publish, under Salt's name."""
        return await self.publish(tgt, fun, arg, tgt_type=tgt_type, kwarg=kwarg)

    async def cmd_iter(self, tgt: str | list, fun: str | list, arg: Sequence = (), *, timeout: float | None = None,
                       tgt_type: str = "glob", kwarg: dict | None = None, expect_minions: bool = True,
                       gather_job_timeout: float = DEFAULT_GATHER_JOB_TIMEOUT,
                       published: list[Published] | None = None) -> AsyncIterator[dict]:
        """Yield `{id: {"ret", "retcode", "success", "jid"}}` as each minion returns.

        After `timeout` seconds the missing minions are probed with `jobs.find`;
        those still running extend the wait.  With `expect_minions` each minion
        that never returns is yielded last as `{id: {"ret": "Minion did not
        return. [reason]", "failed": True, "reason": ..., "retcode": None}}`.
        If `published` is a list, the Published record is appended to it first.
        """
        timeout = self.cfg.timeout if timeout is None else timeout
        jid = new_jid()
        sub = await self._listen((f"rx/job/{jid}/ret/",))
        try:
            pub = await self.publish(tgt, fun, arg, tgt_type=tgt_type, kwarg=kwarg, jid=jid)
            if published is not None:
                published.append(pub)
            state = _Gather(expected=set(pub.minions))
            async for item in self._gather(sub, pub.jid, state, timeout, gather_job_timeout):
                yield item
        finally:
            sub.close(linger=0)
        if expect_minions:
            for m in sorted(state.expected - state.returned):
                reason = "no response" if m in state.answered_probe else "not connected"
                yield {m: Missing(m, reason).as_return()}

    async def _gather(self, sub: zmq.asyncio.Socket, jid: str, state: _Gather, timeout: float,
                      gather_job_timeout: float) -> AsyncIterator[dict]:
        deadline = time.monotonic() + timeout
        events = iter_events(sub)
        while state.expected - state.returned:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if gather_job_timeout <= 0:
                    return
                answers = await self._probe(sorted(state.expected - state.returned), "jobs.find", [jid],
                                            gather_job_timeout)
                state.answered_probe |= answers.keys()
                if not any(isinstance(r, dict) and r for r in answers.values()):
                    return
                deadline = time.monotonic() + timeout
                continue
            try:
                tag, data = await asyncio.wait_for(events.__anext__(), remaining)
            except asyncio.TimeoutError:
                continue
            minion_id = tag.rsplit("/", 1)[-1]
            if minion_id in state.returned:
                continue
            state.returned.add(minion_id)
            state.expected.add(minion_id)
            yield {minion_id: {"ret": data.get("return"), "retcode": data.get("retcode"),
                               "success": data.get("success"), "jid": jid}}

    async def find_job(self, jid: str, minions: list[str], timeout: float) -> dict[str, dict]:
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
                  tgt_type: str = "glob", kwarg: dict | None = None, full_return: bool = False) -> dict:
        """Run a job and return `{id: return}` for the minions that returned (full dicts with full_return)."""
        out: dict = {}
        async for item in self.cmd_iter(tgt, fun, arg, timeout=timeout, tgt_type=tgt_type, kwarg=kwarg,
                                        expect_minions=False):
            for mid, r in item.items():
                out[mid] = r if full_return else r["ret"]
        return out


def _user() -> str:
    try:
        import pwd
        return pwd.getpwuid(os.getuid()).pw_name
    except (KeyError, ImportError):
        return str(os.getuid())


class LocalClient:
    """Synchronous LocalClient for scripts: same methods as AsyncLocalClient."""

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

    def cmd(self, tgt: str | list, fun: str | list, arg: Sequence = (), timeout: float | None = None,
            tgt_type: str = "glob", kwarg: dict | None = None, full_return: bool = False) -> dict:
        return self._run(self._client.cmd(tgt, fun, arg, timeout=timeout, tgt_type=tgt_type, kwarg=kwarg,
                                          full_return=full_return))

    def cmd_async(self, tgt: str | list, fun: str | list, arg: Sequence = (), tgt_type: str = "glob",
                  kwarg: dict | None = None) -> str:
        return self._run(self._client.cmd_async(tgt, fun, arg, tgt_type=tgt_type, kwarg=kwarg))

    def run_job(self, tgt: str | list, fun: str | list, arg: Sequence = (), tgt_type: str = "glob",
                kwarg: dict | None = None) -> Published:
        return self._run(self._client.run_job(tgt, fun, arg, tgt_type=tgt_type, kwarg=kwarg))

    def cmd_iter(self, tgt: str | list, fun: str | list, arg: Sequence = (), timeout: float | None = None,
                 tgt_type: str = "glob", kwarg: dict | None = None, expect_minions: bool = False) -> Iterator[dict]:
        agen = self._client.cmd_iter(tgt, fun, arg, timeout=timeout, tgt_type=tgt_type, kwarg=kwarg,
                                     expect_minions=expect_minions)
        try:
            while True:
                try:
                    yield self._run(agen.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            self._run(agen.aclose())
