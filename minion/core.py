"""The minion: its link to the master, the gate for publications, the function registry and
the executor, wired together.  `run()` lasts until cancelled."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path
from typing import Any, Iterator

from rx import __version__
from rx.config import ConfigError, MinionConfig, load_minion_config
from rx.logsetup import RateLimitedLog
from rx.minion.calls import call_builtin, execute, objects_of, wire_safe
from rx.minion.executor import Executor
from rx.minion.fileclient import FileClient
from rx.minion.gate import Gate, Hold
from rx.minion.grains import Grains
from rx.minion.jobchannel import Channel, JobChannels, LinkChannel
from rx.minion.link import MasterLink
from rx.minion.outbox import STOP_DELIVERY_SECONDS, Outbox
from rx.minion.pillar import MinionPillar
from rx.minion.registry import Registry
from rx.minion.spool import SPOOL_DIR, Spool
from rx.minion.sync import sync_all
from rx.modules import CommandError, ExecContext
from rx.targeting import MinionFacts
from rx.transport import messages as m
from rx.transport.codec import decode
from rx.transport.crypto import Identity, load_or_create_identity
from rx.transport.handshake import Session
from rx.transport.messages import Job, JobReturn, MinionEvent, Publication
from rx.transport.roles import Transport, open_transport

log = logging.getLogger("rx.minion")
_trouble = RateLimitedLog(log)

BUFFER_MAX = 256
SEEN_FILE = "seen_jids"
PILLAR_START_ATTEMPTS = 2
"""Tries of the pillar fetch at start (a minion that cannot get it starts anyway, and tries again later)."""


class Minion:
    def __init__(self, cfg: MinionConfig, *, identity: Identity | None = None, grains: dict | None = None,
                 executor: Any = None, catch_up: bool = True, persist_seen: bool = True) -> None:
        """`identity`, `grains` and `executor` default to the real ones; the swarm passes its own.
        `catch_up`: watch the publish connection and ask for jobs missed while it was down.
        `persist_seen`: keep the jids run in `<cachedir>/seen_jids`, so none runs twice across a restart
        (the swarm, many minions sharing one cachedir in one process, keeps them in memory only)."""
        self.cfg = cfg
        self.catch_up = catch_up
        self.identity = identity or load_or_create_identity(Path(cfg.pki_dir), "minion")
        self.grain_layers: Grains | None = None
        if grains is None:
            self.grain_layers = Grains.load(cfg.id, cfg)
            grains = self.grain_layers.merged()
        self.grains = grains
        self.pillar = MinionPillar(cfg.pillarenv, on_refresh=self._use_pillar)
        self.registry = Registry(cfg)  # lazy: a module is imported by the first job that calls it
        self.registry.context = self._context()  # what __virtual__ gets
        self.executor = executor if executor is not None else Executor(
            self.registry, self._context(), on_event=self._job_event,
            channels=JobChannels(self._exchange, self._on_synced, self._file_client))
        self.registry.attach_host(self)  # the built-ins (rx.minion.builtins) act on this process
        self.gate = Gate(lambda: MinionFacts(self.cfg.id, self.grains, self.pillar.data),
                         Path(cfg.cachedir) / SEEN_FILE if persist_seen and cfg.cachedir else None)
        self.links: list[MasterLink] = []
        self.buffered: list[Publication] = []
        self._tasks: set[asyncio.Task] = set()
        self._jobs: set[asyncio.Task] = set()
        self._reauth_task: asyncio.Task | None = None
        # returns the master cannot take now, kept until it does: on disk, or in memory for a config
        # without a cachedir (hand-built; the swarm, many minions in one process)
        self.spool = Spool(str(Path(cfg.cachedir) / SPOOL_DIR) if cfg.cachedir else None,
                           cfg.return_spool_max_returns, int(cfg.return_spool_max_mb * 2**20))
        self.outbox: Outbox | None = None

    def _context(self) -> ExecContext:
        return ExecContext(minion_id=self.cfg.id, grains=self.grains, config=self.cfg, registry=self.registry,
                           pillar=self.pillar.data, pillar_error=self.pillar.error)

    @property
    def session(self) -> Session | None:
        """The session in force (None until the first authentication)."""
        return self.gate.session

    @property
    def link(self) -> MasterLink:
        return self.links[0]

    async def run(self, transport: Transport | None = None) -> None:
        """Run until cancelled; with a shared `transport` (the swarm), the caller owns it."""
        own = transport is None
        transport = transport or open_transport()
        link = MasterLink(self.cfg, self.identity, transport)
        link.on_session = self._on_session
        self.links = [link]
        self.outbox = Outbox(link, self.spool)
        try:
            await link.reauth(None)
            self._spawn(self.outbox.run())
            sub = link.subscribe(watch_link=self.catch_up)  # first, so a storm of starts subscribes at once
            try:
                # jobs published meanwhile wait in the subscriber, then run with the pillar
                await self.pillar.refresh(link, self.grains, PILLAR_START_ATTEMPTS)
                if self.cfg.pillar_refresh_interval > 0:
                    self._spawn(self.pillar.every(self.cfg.pillar_refresh_interval, link, lambda: self.grains))
                if self.catch_up:
                    self._spawn(link.catch_up(sub, self._run_missed))
                if self.cfg.sync_on_start:  # jobs published meanwhile wait in the subscriber, then run
                    await self._sync_at_start()
                self._spawn(self.fire("start", {"grains": self.grains, "version": __version__}))
                log.warning("rx-minion %s ready: id %s, master %s", __version__, self.cfg.id, self.cfg.master)
                while True:
                    await self.on_publication(await sub.recv())
            finally:
                await self._stop_jobs()  # before the tasks waiting on them are cancelled and forget them
                await self._cancel_tasks()
                sub.close()
        finally:
            self.executor.kill_all()
            await self._cancel_tasks()
            self.gate.seen.close()
            await link.aclose()
            if own:
                transport.close()

    def _on_session(self, session: Session) -> None:
        self.gate.use(session)
        if self.buffered:
            held, self.buffered = self.buffered, []
            for pub in held:
                with self._isolated("a held publication"):
                    self._accept(pub, retry=False)

    async def on_publication(self, frame: bytes) -> None:
        """Verify, open, admit and start one publication; nothing in one frame can stop the receive loop."""
        with self._isolated("a publication"):
            pub = self.gate.verify(frame)
            if pub is not None:
                self._accept(pub, retry=True)

    @contextlib.contextmanager
    def _isolated(self, what: str) -> Iterator[None]:
        """An unexpected error while handling `what` is logged (rate-limited) and dropped with it."""
        try:
            yield
        except Exception:
            _trouble(logging.ERROR, "dropped %s: unexpected error handling it", what, exc_info=True)

    def _accept(self, pub: Publication, retry: bool) -> None:
        """Open a verified publication; one under a newer serial or another secret (the master's session
        changed) is held and tried again after re-authenticating, once."""
        job = self.gate.open(pub, retry)
        if job is Hold.REAUTH:
            if len(self.buffered) < BUFFER_MAX:
                self.buffered.append(pub)
            if self._reauth_task is None or self._reauth_task.done():
                self._reauth_task = self._spawn(self.link.reauth(self.link.session))
        elif job is not None:
            self._run_if_ours(job)

    def _run_missed(self, job: Job) -> None:
        if job.jid not in self.gate.seen:
            log.info("job %s was published while the connection was down: running it now", job.jid)
            with self._isolated(f"missed job {job.jid}"):
                self._run_if_ours(job)

    def _run_if_ours(self, job: Job) -> None:
        if self.gate.admit(job):
            task = self._spawn(self.handle_job(job))
            self._jobs.add(task)
            task.add_done_callback(self._jobs.discard)

    async def handle_job(self, job: Job) -> None:
        log.info("job %s: %s", job.jid, job.fun)
        started = time.time()
        builtin = self.registry.builtin(job.fun)
        if builtin is not None:
            result = await call_builtin(builtin, job.fun, job.arg, job.kwarg)
        elif self.registry.inline(job.fun):
            result = decode(wire_safe(execute(self.registry, job, self._context()), objects_of(job)))
        else:
            result = await self.executor.run(job)
        with self._isolated("reloading the grains file"):
            await self._reload_grains_file()
        fun_args = list(job.arg) + ([job.kwarg] if job.kwarg else [])
        ret = JobReturn(jid=job.jid, fun=job.fun, fun_args=fun_args, retcode=int(result.get("retcode", 1)),
                        success=bool(result.get("success", False)), ret=result.get("return"),
                        start_time=started, end_time=max(started, time.time()))
        assert self.outbox is not None
        await self.outbox.deliver(ret.to_wire())

    # ------------------------------------------------------------ state the built-ins act on (rx.minion.builtins)

    async def refresh_grains(self) -> dict:
        """Recompute the grains (every layer: core, custom, the grains file, the config's) and send them to the
        master's cache."""
        static = self.cfg.grains
        try:
            static = load_minion_config(self.cfg.config_dir, {"id": self.cfg.id}).grains
        except ConfigError as exc:
            log.warning("grains.refresh: keeping the static grains loaded at start: %s", exc)
        self.grain_layers = await asyncio.to_thread(Grains.load, self.cfg.id, self.cfg, static=static)
        await self._use_grains(self.grain_layers.merged())
        return self.grains

    async def refresh_pillar(self) -> str:
        """Fetch the pillar from the master now: "" if it was refreshed, else why not (the last good one is kept).
        What the built-in `rxutil.refresh_pillar` (rx.minion.pillar.refresh_pillar) calls."""
        return await self.pillar.refresh(self.link, self.grains)

    def _use_pillar(self) -> None:
        """The pillar (or the reason there is none) changed: jobs started from now on get it."""
        if isinstance(self.executor, Executor):
            self.executor.context = self._context()

    async def _reload_grains_file(self) -> None:
        """A job changed the grains file (`grains.setval` & co, or any job writing it): merge it again and
        send the grains to the master before that job's return goes out, so a grain target right after
        already sees the change."""
        if self.grain_layers is not None and self.grain_layers.file_changed():
            self.grain_layers.reload_file()
            await self._use_grains(self.grain_layers.merged())

    async def _use_grains(self, grains: dict) -> None:
        self.grains = grains
        self.registry.context = self._context()
        if isinstance(self.executor, Executor):
            self.executor.context = self._context()
        await self.fire("grains", {"grains": self.grains})

    def refresh_modules(self) -> None:
        """Look for module files and entry points again; the next job asks each module's __virtual__ again."""
        self.registry.rescan(refresh_entry_points=True)

    # ------------------------------------------------------------ the master's files

    def _exchange(self, cmd: str, load: dict) -> Any:
        return self.link.exchange(cmd, load)

    def _file_client(self, channel: Channel) -> FileClient:
        return FileClient(channel, self.cfg.cachedir, self.cfg.saltenv)

    def _on_synced(self, kinds: list[str]) -> None:
        """A job (or the sync at start) changed these kinds in `<cachedir>/extmods`: load them again."""
        log.info("synced %s from the master", ", ".join(kinds))
        if "modules" in kinds:  # a job imports its module when it runs: finding the files again is enough
            self.registry.rescan()
        if "grains" in kinds:
            self._spawn(self.refresh_grains())

    async def sync_files(self, kind: str, saltenv: str = "") -> Any:
        """`saltutil.sync_modules`/`sync_grains` (kind "modules"/"grains"), `sync_all` (kind "all"): run in
        this process, over its own link to the master (the file client's requests block: a thread)."""
        files = self._file_client(LinkChannel(asyncio.get_running_loop(), self._exchange, self._on_synced))
        if kind == "all":
            return await asyncio.to_thread(files.sync_all, saltenv or None)
        return await asyncio.to_thread(files.sync, kind, saltenv or None)

    async def _sync_at_start(self) -> None:
        """`sync_on_start`: sync modules and grains before taking jobs (a failure is logged, not fatal)."""
        files = self._file_client(LinkChannel(asyncio.get_running_loop(), self._exchange, self._on_synced))
        try:
            changed = await asyncio.to_thread(sync_all, files)
            log.info("sync_on_start: %s", changed)
        except (CommandError, OSError) as exc:
            log.error("sync_on_start failed (the minion runs with the modules it had): %s", exc)
        except Exception:  # never fatal: the minion still takes jobs
            log.exception("sync_on_start failed (the minion runs with the modules it had)")

    # ------------------------------------------------------------ helpers

    def _job_event(self, tag: str, data: dict) -> None:
        """An event a job fired (event.send): sent to the master like the minion's own."""
        self._spawn(self.fire(tag, data))

    async def fire(self, tag: str, data: dict) -> None:
        await self.link.send(m.MINION_EVENT, MinionEvent(tag=tag, data=data).to_wire())

    async def _stop_jobs(self) -> None:
        """Running jobs get job_stop_timeout to end, then are killed (each returns an error saying the minion
        was stopping); the returns get a moment to reach the master, and the ones still on their way are
        spooled when their tasks are cancelled."""
        await self.executor.stop(self.cfg.job_stop_timeout)
        if self._jobs:
            await asyncio.wait(list(self._jobs), timeout=STOP_DELIVERY_SECONDS)

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
