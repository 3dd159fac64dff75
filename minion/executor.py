"""Runs each job in its own child process, so a crashing or hanging module
never takes the minion down, and keeps the table of running jobs.

A job process leads its own process group, and ends with the minion however the minion ends: on
a stop, jobs get `job_stop_timeout` seconds, then are killed and return an error saying so (`stop`);
if the minion dies (kill -9, a crash), the kernel kills each job's whole process group, because
the job holds the read end of a pipe whose only writer is the minion, with O_ASYNC and F_SETSIG
SIGKILL set for its group (the "lifeline": when the minion's end closes, the pipe signals).

A job has a time limit: the minion's `job_timeout` (0: none), or the call's `timeout=` (see
rx.minion.calls); the job process announces it on its pipe before the function runs (HEADER), and a
job over it gets SIGTERM, then SIGKILL after KILL_GRACE, and returns an error saying so.  A job's
stdin and stdout are /dev/null: it answers through its return, never by printing.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import signal
import socket
import struct
import sys
import time
from dataclasses import dataclass, field, replace
from typing import Any

from rx.minion.calls import BY_CALL, EX_GENERIC, call_one, execute, job_timeout, objects_of, wire_safe
from rx.minion.jobchannel import JobChannels
from rx.minion.jobevents import EventReader, EventWriter, OnEvent
from rx.minion.registry import Registry
from rx.modules import ExecContext
from rx.transport.codec import DecodeError, decode
from rx.transport.messages import Job

__all__ = ["HEADER", "KILL_GRACE", "Executor", "RunningJob", "call_one", "execute"]
"""(`call_one` and `execute` live in rx.minion.calls; they are also importable from here.)"""

log = logging.getLogger(__name__)

HEADER = struct.Struct("!dB")
"""What a job process writes first on its pipe: the job's time limit in seconds (0: none) and where it
came from (calls.BY_CONFIG or BY_CALL); the encoded return follows."""
KILL_GRACE = 2.0
"""Seconds a job over its time limit gets between SIGTERM and SIGKILL (to its process group)."""


@dataclass
class RunningJob:
    jid: str
    fun: str | list
    pid: int
    started: float
    stop_reason: str = ""
    """Set when the minion ended the job (stopping, over its time limit): the job's error return says so."""
    killed_by: str = ""
    """The built-in that signalled the job, for its return if it then dies without one."""
    arg: list = field(default_factory=list)
    tgt: Any = ""
    tgt_type: str = ""
    user: str = ""

    def info(self) -> dict:
        return {"jid": self.jid, "fun": self.fun, "pid": self.pid, "started": self.started}

    def job_data(self) -> dict:
        """The job as Salt's saltutil.running shows it."""
        return {"arg": self.arg, "fun": self.fun, "jid": self.jid, "pid": self.pid, "ret": "", "tgt": self.tgt,
                "tgt_type": self.tgt_type, "user": self.user}


class Executor:
    """Forks one child per job; `context` is what module functions get (replaced on grains refresh);
    `on_event(tag, data)` gets the events jobs fire (`event.send`; without it they cannot fire any); with
    `channels`, each job gets a channel to the master through the minion process (its file client)."""

    def __init__(self, registry: Registry, context: ExecContext, on_event: OnEvent | None = None,
                 channels: JobChannels | None = None) -> None:
        self.registry = registry
        self.context = context
        self.on_event = on_event
        self.channels = channels
        self.running: dict[str, RunningJob] = {}
        self.stopping = False
        self._lifelines: dict[str, int] = {}
        self._channel_ends: dict[str, socket.socket] = {}
        self._ended = asyncio.Event()

    async def run(self, job: Job) -> dict:
        """Fork, run the job in the child, read its msgpack result through a pipe."""
        if self.stopping:
            return _error("the minion was stopping: the job was not started")
        r, w = os.pipe()
        life_r, life_w = os.pipe()
        ev_r, ev_w = os.pipe() if self.on_event else (-1, -1)
        ours, theirs = self.channels.pair() if self.channels is not None else (None, None)
        try:
            pid = os.fork()
        except OSError as exc:
            for fd in (r, w, life_r, life_w, ev_r, ev_w):
                if fd >= 0:
                    os.close(fd)
            for end in (ours, theirs):
                if end is not None:
                    end.close()
            return _error(f"cannot start a job process: {exc.strerror}")
        if pid == 0:  # child: never returns
            for fd in (r, life_w, ev_r):
                if fd >= 0:
                    os.close(fd)
            if ours is not None:
                ours.close()
            self._child(job, w, life_r, ev_w, theirs)
        for fd in (w, life_r, ev_w):
            if fd >= 0:
                os.close(fd)
        events = EventReader(ev_r, job.jid, self.on_event) if self.on_event else None
        self._lifelines[job.jid] = life_w
        serving = None
        if ours is not None and theirs is not None and self.channels is not None:
            theirs.close()
            self._channel_ends[job.jid] = ours
            serving = asyncio.get_running_loop().create_task(self.channels.serve(job.jid, ours))
        try:
            os.setpgid(pid, pid)  # also here, so a kill right after the fork finds the group
        except OSError:
            pass  # the child got there first (or already exited)
        entry = self.running[job.jid] = RunningJob(
            job.jid, job.fun, pid, time.time(), arg=list(job.arg) + ([job.kwarg] if job.kwarg else []),
            tgt=job.tgt, tgt_type=job.tgt_type, user=job.user)
        try:
            data = await self._watch(entry, r)
            status = await _reap(pid)
            if events is not None:
                await events.done  # its last events go out before its return
        finally:
            if events is not None:
                events.close()
            self.running.pop(job.jid, None)
            os.close(self._lifelines.pop(job.jid))
            if serving is not None:
                serving.cancel()
                await asyncio.gather(serving, return_exceptions=True)
                self._channel_ends.pop(job.jid).close()
            self._ended.set()
        try:
            result = decode(data[HEADER.size:]) if len(data) > HEADER.size else None
            if not isinstance(result, dict):
                raise DecodeError("not a map")
            return result
        except DecodeError:
            if entry.stop_reason:
                return _error(entry.stop_reason)
            by = f" ({entry.killed_by})" if entry.killed_by else ""
            return _error(f"the job process {_describe_exit(status)}{by} before returning")

    async def _watch(self, entry: RunningJob, fd: int) -> bytes:
        """Read the job's pipe to its end, ending the job if it outlives its time limit: the minion's
        job_timeout until the job announces its own (HEADER), then that one."""
        loop = asyncio.get_running_loop()
        pipe = _Pipe(fd, loop)
        t0 = loop.time()
        limit, source = job_timeout(self.context), -1
        try:
            while not pipe.closed.done():
                waits: set[asyncio.Future] = {pipe.closed} if pipe.header.done() else {pipe.closed, pipe.header}
                left = t0 + limit - loop.time() if limit else None
                if left is not None and left <= 0:
                    await self._over_limit(entry, limit, source, pipe)
                    break
                await asyncio.wait(waits, timeout=left, return_when=asyncio.FIRST_COMPLETED)
                if pipe.header.done() and source == -1:
                    limit, source = pipe.header.result()
            return pipe.data()
        finally:
            pipe.close()

    async def _over_limit(self, entry: RunningJob, limit: float, source: int, pipe: "_Pipe") -> None:
        what = "its timeout= argument" if source == BY_CALL else "job_timeout"
        entry.stop_reason = f"the job ran longer than its time limit ({limit:g}s, from {what}) and was killed"
        log.warning("job %s (%s) still runs after %gs (%s): ending it", entry.jid, entry.fun, limit, what)
        self.kill(entry.jid, signal.SIGTERM)
        await asyncio.wait({pipe.closed}, timeout=KILL_GRACE)
        self.kill(entry.jid, signal.SIGKILL)  # the job, or what it started and that ignored SIGTERM
        await asyncio.wait({pipe.closed}, timeout=KILL_GRACE)  # a process that left the group may hold it

    def _child(self, job: Job, w: int, lifeline: int, events: int, channel: socket.socket | None) -> None:
        code = 0
        try:
            os.setpgid(0, 0)
            for fd in self._lifelines.values():  # other jobs' lifelines: only the minion may hold them
                os.close(fd)
            for end in self._channel_ends.values():  # and other jobs' channels
                end.close()
            _hold_lifeline(lifeline)
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(sig, signal.SIG_DFL)
            _quiet_stdio()
            announced = []

            def announce(limit: float, source: int) -> None:
                if not announced:
                    announced.append(True)
                    _write_all(w, HEADER.pack(limit, source))
            ctx = replace(self.context, fire_event=EventWriter(events)) if events >= 0 else self.context
            if channel is not None and self.channels is not None:
                ctx = self.channels.job_context(ctx, channel)
            result = execute(self.registry, job, ctx, announce)
            announce(0.0, 0)
            _write_all(w, wire_safe(result, objects_of(job)))
        except BaseException:
            code = 1
        finally:
            os._exit(code)

    async def stop(self, grace: float) -> None:
        """The minion is stopping: start no more jobs, give the running ones `grace` seconds to end, then
        kill the rest (SIGKILL to each job's process group); each killed job returns an error that says so."""
        self.stopping = True
        if self.running:
            log.warning("stopping: %d running jobs get job_stop_timeout (%gs) to end", len(self.running), grace)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while self.running and (left := deadline - loop.time()) > 0:
            self._ended.clear()
            try:
                async with asyncio.timeout(left):
                    await self._ended.wait()
            except TimeoutError:
                break
        for jid, job in list(self.running.items()):
            job.stop_reason = (f"the minion was stopping: the job was still running after job_stop_timeout "
                               f"({grace:g}s) and was killed")
            log.warning("job %s (%s) still runs after job_stop_timeout (%gs): killing it", jid, job.fun, grace)
            self.kill(jid, signal.SIGKILL)

    def kill(self, jid: str, sig: int = signal.SIGTERM, why: str = "") -> bool:
        """Signal the job's process group; `why` (the built-in asking) is named in its return if it then
        dies without one.  False if the job is not running."""
        job = self.running.get(jid)
        if job is None:
            return False
        job.killed_by = job.killed_by or why
        try:
            os.killpg(job.pid, sig)
        except ProcessLookupError:
            try:
                os.kill(job.pid, sig)
            except ProcessLookupError:
                return False
        return True

    def kill_all(self) -> None:
        for jid in list(self.running):
            self.kill(jid, signal.SIGKILL)


def _error(message: str) -> dict:
    return {"return": f"ERROR: {message}", "retcode": EX_GENERIC, "success": False}


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _quiet_stdio() -> None:
    """In a job process: stdin and stdout become /dev/null.  A job answers through its return, so what a
    function prints (100 MB of it, even) never reaches the minion's log or journal, and nothing reads
    the minion's stdin; stderr stays, for the job's log records."""
    null = os.open(os.devnull, os.O_RDWR)
    try:
        os.dup2(null, 0)
        os.dup2(null, 1)
    finally:
        os.close(null)
    sys.stdout = sys.__stdout__ = open(os.devnull, "w")  # whatever sys.stdout was (not always fd 1)
    sys.stdin = sys.__stdin__ = open(os.devnull)


def _hold_lifeline(fd: int) -> None:
    """In a job process (its group's leader): have the kernel SIGKILL the whole group when the other end
    of `fd`'s pipe, held by the minion alone, closes.  If the minion is already gone, exit now (the
    pipe signalled before anyone listened).  Where this cannot be set up, the job runs without it."""
    try:
        fcntl.fcntl(fd, fcntl.F_SETOWN, -os.getpgrp())
        fcntl.fcntl(fd, fcntl.F_SETSIG, signal.SIGKILL)
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_ASYNC | os.O_NONBLOCK)
        if os.read(fd, 1) == b"":
            os._exit(1)
    except BlockingIOError:
        return  # the minion is alive
    except (OSError, AttributeError) as exc:
        log.warning("job process %d: cannot tie it to the minion's life (%s): it would outlive a killed minion",
                    os.getpid(), exc)


class _Pipe:
    """Collects a job's pipe in the event loop: `header` resolves to (limit, source) once HEADER.size
    bytes have come, `closed` when the job's end is closed."""

    def __init__(self, fd: int, loop: asyncio.AbstractEventLoop) -> None:
        self.fd = fd
        self.loop = loop
        self.chunks: list[bytes] = []
        self.size = 0
        self.header: asyncio.Future = loop.create_future()
        self.closed: asyncio.Future = loop.create_future()
        os.set_blocking(fd, False)
        loop.add_reader(fd, self._readable)

    def _readable(self) -> None:
        try:
            while True:
                chunk = os.read(self.fd, 1 << 16)
                if not chunk:
                    self.loop.remove_reader(self.fd)
                    if not self.closed.done():
                        self.closed.set_result(None)
                    return
                self.chunks.append(chunk)
                self.size += len(chunk)
                if self.size >= HEADER.size and not self.header.done():
                    self.header.set_result(HEADER.unpack(b"".join(self.chunks)[:HEADER.size]))
        except BlockingIOError:
            return

    def data(self) -> bytes:
        return b"".join(self.chunks)

    def close(self) -> None:
        self.loop.remove_reader(self.fd)
        os.close(self.fd)


async def _reap(pid: int) -> int:
    """Wait status of a job process that has closed its pipe (it is exiting: this takes microseconds,
    so poll without a thread)."""
    delay = 0.0005
    while True:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return 0
        if done:
            return status
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)


def _describe_exit(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = str(sig)
        return f"was killed by {name}"
    return f"exited with status {os.WEXITSTATUS(status)}"
