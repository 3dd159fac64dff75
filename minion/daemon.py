"""`rx-minion`: authenticate, subscribe, verify and decrypt jobs, run the ones
that target this minion in child processes, and return their results."""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any

import zmq
import zmq.asyncio
from zmq.utils.monitor import parse_monitor_message

from rx import __version__
from rx.config import ConfigError, MinionConfig, load_minion_config
from rx.daemonize import daemon_parser, fatal, launch, overrides, print_config_if_asked, remove_pidfile
from rx.minion.auth import Authenticator
from rx.minion.executor import Executor
from rx.minion.grains import load_grains
from rx.minion.loader import INLINE_FUNCTIONS, Loader
from rx.modules import ModuleContext
from rx.targeting import MinionFacts, Target, TargetError, compile_target
from rx.transport.channels import ReqClient, RequestTimeout, recv_multipart, subscriber, tcp_url
from rx.transport.codec import NETWORK_MAX_OBJECTS
from rx.transport.crypto import CryptoError, Identity, Verifier, load_or_create_identity
from rx.transport.handshake import Session
from rx.transport.messages import Job, JobReturn, MinionEvent, ProtocolError, Publication
from rx.transport.secure import Rejected, StaleSerial, open_publication, open_reply, parse_publication, seal_request

log = logging.getLogger("rx.minion")

JOB_WINDOW = 300.0
"""A job older than this (by the master's clock) is refused as stale."""
SEEN_JIDS_MAX = 100_000
BUFFER_MAX = 256
RETURN_ATTEMPTS = 6


@functools.lru_cache(maxsize=512)
def _target(tgt: str | tuple, tgt_type: str, delimiter: str) -> Target:
    """Compiled targets are shared by every job (and every swarm minion) with the same expression."""
    return compile_target(list(tgt) if isinstance(tgt, tuple) else tgt, tgt_type, delimiter=delimiter)


class Minion:
    def __init__(self, cfg: MinionConfig, *, identity: Identity | None = None, grains: dict | None = None,
                 executor: Any = None, catch_up: bool = True) -> None:
        """`identity`, `grains` and `executor` default to the real ones; the swarm passes its own.
        `catch_up`: watch the publish connection and ask for jobs missed while it was down."""
        self.catch_up = catch_up
        self.cfg = cfg
        self.identity = identity or load_or_create_identity(Path(cfg.pki_dir), "minion")
        self.grains = grains if grains is not None else load_grains(cfg.id, cfg.grains)
        if executor is None:
            loader = Loader()
            loader.preload()
            executor = Executor(loader, ModuleContext(minion_id=cfg.id, grains=self.grains))
        self.executor = executor
        self.session: Session | None = None
        self.session_started = 0.0
        self.verifier: Verifier | None = None
        self.seen: collections.OrderedDict[str, float] = collections.OrderedDict()
        self.buffered: list[Publication] = []
        self._auth_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task] = set()
        self._reauth_task: asyncio.Task | None = None

    async def run(self, zctx: zmq.asyncio.Context | None = None) -> None:
        """Run until cancelled; with a shared `zctx` (the swarm), the caller owns the context."""
        own_ctx = zctx is None
        zctx = zctx or zmq.asyncio.Context()
        self.req = ReqClient(zctx, tcp_url(self.cfg.master, self.cfg.master_port), max_objects=NETWORK_MAX_OBJECTS)
        self.auth = Authenticator(self.cfg, self.identity, self.req)
        try:
            await self.reauth(None)
            monitors: list[zmq.asyncio.Socket] = []

            def attach_monitor(sock: zmq.asyncio.Socket) -> None:
                if self.catch_up:
                    monitors.append(sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED))
            sub = subscriber(zctx, tcp_url(self.cfg.master, self.cfg.publish_port), before_connect=attach_monitor)
            for monitor in monitors:
                self._spawn(self._watch_connection(monitor))
            try:
                self._spawn(self.fire("start", {"grains": self.grains, "version": __version__}))
                log.warning("rx-minion %s ready: id %s, master %s", __version__, self.cfg.id, self.cfg.master)
                while True:
                    frames = await recv_multipart(sub)
                    await self.on_publication(frames[-1])
            finally:
                self.executor.kill_all()  # before the tasks waiting on them are cancelled and forget them
                await self._cancel_tasks()
                sub.close(linger=0)
        finally:
            self.executor.kill_all()
            await self._cancel_tasks()
            await self.req.aclose()
            if own_ctx:
                zctx.term()

    async def _watch_connection(self, monitor: zmq.asyncio.Socket) -> None:
        """A publication sent while the SUB socket (re)connects never arrives: on every (re)connect,
        ask the master for the jobs addressed to us since the link went down (or since we authenticated)."""
        lost_at: float | None = time.time() - 1.0
        try:
            while True:
                event = parse_monitor_message(await recv_multipart(monitor))["event"]
                if event == zmq.EVENT_DISCONNECTED and lost_at is None:
                    lost_at = time.time() - 1.0
                elif event == zmq.EVENT_HANDSHAKE_SUCCEEDED and lost_at is not None:
                    since, lost_at = lost_at, None
                    await self.missed_jobs(since)
        finally:
            monitor.close(linger=0)

    async def missed_jobs(self, since_local: float) -> None:
        assert self.session is not None
        reply = await self.send("_missed", {"since": since_local + self.session.master_offset})
        jobs = reply.get("jobs") if reply else None
        for load in jobs if isinstance(jobs, list) else []:
            try:
                job = Job.from_wire(load)
            except ProtocolError as exc:
                log.warning("dropped a missed job the master sent: %s", exc)
                continue
            if job.jid not in self.seen:
                log.info("job %s was published while the connection was down: running it now", job.jid)
                self._run_if_ours(job)

    async def _cancel_tasks(self) -> None:
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn(self, coro: Any) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def reauth(self, seen: Session | None) -> None:
        """Single-flight re-authentication: only if the session is still the one the caller found wanting,
        so a burst of triggers costs one handshake.  Held publications are then tried once more."""
        async with self._auth_lock:
            if self.session is not seen:
                return
            session = await self.auth.until_accepted()
            self.session = session
            if not self.session_started:  # when this process first got keys: older jobs are replays
                self.session_started = time.time() + session.master_offset
            self.verifier = Verifier(session.master_pub)
        if self.buffered:
            held, self.buffered = self.buffered, []
            for pub in held:
                self._accept(pub, retry=False)

    def _hold(self, pub: Publication) -> None:
        """Keep a master-signed publication we cannot open yet, and re-authenticate to get the key."""
        if len(self.buffered) < BUFFER_MAX:
            self.buffered.append(pub)
        if self._reauth_task is None or self._reauth_task.done():
            self._reauth_task = self._spawn(self.reauth(self.session))

    async def on_publication(self, frame: bytes) -> None:
        assert self.verifier is not None and self.session is not None
        try:
            pub = parse_publication(frame, self.verifier)
        except Rejected as exc:
            log.warning("dropped a publication that does not verify: %s", exc)
            return
        self._accept(pub, retry=True)

    def _accept(self, pub: Publication, retry: bool) -> None:
        """Open a verified publication; one under a newer serial or another secret (the master's
        session changed) is held and tried again after re-authenticating, once."""
        assert self.session is not None
        try:
            job = open_publication(pub, self.session.publish_key, self.session.serial)
        except StaleSerial as exc:
            if exc.theirs > exc.ours and retry:
                self._hold(pub)
            else:
                log.debug("dropped a publication under key serial %d (ours %d)", exc.theirs, exc.ours)
            return
        except Rejected as exc:
            if retry:
                self._hold(pub)
            else:
                log.warning("dropped a publication that does not decrypt: %s", exc)
            return
        self._run_if_ours(job)

    def _run_if_ours(self, job: Job) -> None:
        if not self._fresh(job):
            return
        try:
            if not _target(job.tgt if isinstance(job.tgt, str) else tuple(job.tgt), job.tgt_type,
                           job.delimiter).match(MinionFacts(self.cfg.id, self.grains)):
                return
        except TargetError as exc:
            log.debug("job %s: target not understood here: %s", job.jid, exc)
            return
        self._spawn(self.handle_job(job))

    def _fresh(self, job: Job) -> bool:
        assert self.session is not None
        master_now = time.time() + self.session.master_offset
        if job.jid in self.seen:
            log.warning("refused a replayed job %s", job.jid)
            return False
        if abs(master_now - job.ts) > JOB_WINDOW or job.ts < self.session_started - 5.0:
            log.warning("refused stale job %s (published %.0fs ago by the master's clock)", job.jid, master_now - job.ts)
            return False
        self.seen[job.jid] = job.ts
        while len(self.seen) > SEEN_JIDS_MAX or (self.seen and next(iter(self.seen.values())) < master_now - JOB_WINDOW):
            self.seen.popitem(last=False)
        return True

    async def handle_job(self, job: Job) -> None:
        log.info("job %s: %s", job.jid, job.fun)
        if job.fun in INLINE_FUNCTIONS:
            result = await self.inline(job)
        else:
            result = await self.executor.run(job)
        fun_args = list(job.arg) + ([job.kwarg] if job.kwarg else [])
        ret = JobReturn(jid=job.jid, fun=job.fun, fun_args=fun_args, retcode=int(result.get("retcode", 1)),
                        success=bool(result.get("success", False)), ret=result.get("return"))
        await self.send("_return", ret.to_wire())

    async def inline(self, job: Job) -> dict:
        assert isinstance(job.fun, str)
        jid = str(job.arg[0] if job.arg else job.kwarg.get("jid", ""))
        if job.fun == "jobs.running":
            value: Any = [j.info() for j in self.executor.running.values()]
        elif job.fun == "jobs.find":
            found = self.executor.running.get(jid)
            value = found.info() if found else {}
        elif job.fun == "jobs.kill":
            value = self.executor.kill(jid)
        else:
            value = await self.refresh_grains()
        return {"return": value, "retcode": 0, "success": True}

    async def refresh_grains(self) -> dict:
        """Recompute grains (core + static from the config file) and send them to the master's cache."""
        static = self.cfg.grains
        try:
            static = load_minion_config(self.cfg.config_dir, {"id": self.cfg.id}).grains
        except ConfigError as exc:
            log.warning("grains.refresh: keeping the static grains loaded at start: %s", exc)
        self.grains = await asyncio.to_thread(load_grains, self.cfg.id, static)
        if isinstance(self.executor, Executor):
            self.executor.context = ModuleContext(minion_id=self.cfg.id, grains=self.grains)
        await self.fire("grains", {"grains": self.grains})
        return self.grains

    async def fire(self, tag: str, data: dict) -> None:
        await self.send("_minion_event", MinionEvent(tag=tag, data=data).to_wire())

    async def send(self, cmd: str, load: dict) -> dict | None:
        """Send a sealed request, re-authenticating and retrying; the master's reply, or None if the request
        could not be delivered or was refused."""
        delay = 1.0
        for _attempt in range(RETURN_ATTEMPTS):
            session = self.session
            assert session is not None
            wire = seal_request(session.request_key, self.cfg.id, session.serial, cmd, load)
            try:
                reply = await self.req.request(wire, timeout=self.cfg.timeout, retries=1)
            except RequestTimeout as exc:
                log.warning("%s: %s; retrying in %.0fs", cmd, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            if isinstance(reply, dict) and reply.get("ok") is False:
                err = reply.get("error")
                kind = err.get("type") if isinstance(err, dict) else None
                if kind in ("reauth", "auth"):
                    await self.reauth(session)
                    continue
                log.error("%s refused by the master: %s", cmd, reply.get("error"))
                return None
            try:
                inner = open_reply(session.request_key, self.cfg.id, session.serial, reply)
            except Rejected as exc:
                log.error("%s: reply from the master does not authenticate: %s", cmd, exc)
                return None
            if isinstance(inner, dict) and inner.get("ok") is True:
                return inner
            if isinstance(inner, dict) and isinstance(inner.get("error"), dict) and inner["error"].get("type") == "duplicate":
                log.debug("%s was already delivered (a retry after a lost reply)", cmd)
                return inner
            log.error("%s refused by the master: %s", cmd, inner.get("error") if isinstance(inner, dict) else inner)
            return None
        log.error("%s: gave up after %d attempts", cmd, RETURN_ATTEMPTS)
        return None


def main(argv: list[str] | None = None) -> None:
    parser = daemon_parser("rx-minion", "Run an rx minion.")
    parser.add_argument("--id", help="minion id (default: id setting, else the host name)")
    args = parser.parse_args(argv)
    try:
        cfg = load_minion_config(args.config_dir, overrides(args, "id"))
    except ConfigError as exc:
        fatal(str(exc))
    print_config_if_asked(args, cfg)

    def prepare() -> Minion:
        try:
            return Minion(cfg)
        except (OSError, CryptoError) as exc:
            raise ConfigError(f"pki_dir: {cfg.pki_dir!r} is not usable: {getattr(exc, 'strerror', None) or exc}",
                              key="pki_dir") from None
    minion = launch("rx-minion", args, cfg, prepare, [cfg.pki_dir, cfg.cachedir])
    try:
        sys.exit(_run_until_signal(minion))
    finally:
        remove_pidfile(cfg.pidfile)


def _run_until_signal(minion: Minion) -> int:
    async def runner() -> int:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await minion.run()
        except asyncio.CancelledError:
            log.warning("rx-minion stopping")
        return 0
    return asyncio.run(runner())


if __name__ == "__main__":
    main()
