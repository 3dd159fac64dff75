"""Runs each job in its own child process, so a crashing or hanging module
never takes the minion down, and keeps the table of running jobs.

A job process leads its own process group, and ends with the minion however the minion ends: on
a stop, jobs get `job_stop_timeout` seconds, then are killed and return an error saying so (`stop`);
if the minion dies (kill -9, a crash), the kernel kills each job's whole process group, because
the job holds the read end of a pipe whose only writer is the minion, with O_ASYNC and F_SETSIG
SIGKILL set for its group (the "lifeline": when the minion's end closes, the pipe signals).
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import signal
import socket
import time
import traceback
from dataclasses import dataclass, replace
from typing import Any

from rx.minion.jobchannel import JobChannels
from rx.minion.registry import Registry, UnknownFunction
from rx.modules import CommandError, ExecContext, Result, takes_context
from rx.transport.codec import MAX_DEPTH, MAX_OBJECTS, DecodeError, check_structure, decode, encode
from rx.transport.messages import Job

log = logging.getLogger(__name__)

RETCODE_UNAVAILABLE = 254


@dataclass
class RunningJob:
    jid: str
    fun: str | list
    pid: int
    started: float
    stop_reason: str = ""
    """Set when the minion killed the job because it was stopping: the job's error return says so."""

    def info(self) -> dict:
        return {"jid": self.jid, "fun": self.fun, "pid": self.pid, "started": self.started}


def _plain(value: Any) -> Any:
    """Make a return value msgpack-safe: unknown types become their repr."""
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return value
    if isinstance(value, dict):
        return {k if isinstance(k, (str, bytes)) else str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    return repr(value)


def call_one(registry: Registry, fun: str, args: list, kwargs: dict, ctx: ExecContext) -> tuple[Any, int]:
    """Call one function; any failure becomes (message or traceback, non-zero retcode)."""
    try:
        func = registry.resolve(fun)
    except UnknownFunction as exc:
        return str(exc), RETCODE_UNAVAILABLE
    call_args = [replace(ctx, fun=fun), *args] if takes_context(func) else list(args)
    try:
        value = func(*call_args, **kwargs)
    except CommandError as exc:
        return f"ERROR: {exc}", 1
    except TypeError as exc:
        if exc.__traceback__ is not None and exc.__traceback__.tb_next is None:
            return f"ERROR: {fun}: {exc}", 1
        return "".join(traceback.format_exc()), 1
    except Exception:
        return "".join(traceback.format_exc()), 1
    if isinstance(value, Result):
        return value.value, value.retcode
    return value, 0


def execute(registry: Registry, job: Job, ctx: ExecContext) -> dict:
    """The return of a job as {return, retcode, success}.  A multi-function job returns
    `{fun: value}`, or, when a function is named more than once, a list of the values in call
    order (so no result is lost)."""
    ctx = replace(ctx, jid=job.jid)
    if isinstance(job.fun, list):
        values, worst = [], 0
        for fun, args in zip(job.fun, job.arg):
            value, rc = call_one(registry, fun, args, {}, ctx)
            values.append(value)
            worst = worst or rc
        repeated = len(set(job.fun)) < len(job.fun)
        out: Any = values if repeated else dict(zip(job.fun, values))
        return {"return": _plain(out), "retcode": worst, "success": worst == 0}
    value, rc = call_one(registry, job.fun, job.arg, job.kwarg, ctx)
    return {"return": _plain(value), "retcode": rc, "success": rc == 0}


class Executor:
    """Forks one child per job; `context` is what module functions get (replaced on grains refresh).
    With `channels`, each job gets a channel to the master through the minion process (its file client)."""

    def __init__(self, registry: Registry, context: ExecContext, channels: JobChannels | None = None) -> None:
        self.registry = registry
        self.context = context
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
        ours, theirs = self.channels.pair() if self.channels is not None else (None, None)
        try:
            pid = os.fork()
        except OSError as exc:
            for fd in (r, w, life_r, life_w):
                os.close(fd)
            for end in (ours, theirs):
                if end is not None:
                    end.close()
            return _error(f"cannot start a job process: {exc.strerror}")
        if pid == 0:  # child: never returns
            os.close(r)
            os.close(life_w)
            if ours is not None:
                ours.close()
            self._child(job, w, life_r, theirs)
        os.close(w)
        os.close(life_r)
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
        entry = self.running[job.jid] = RunningJob(job.jid, job.fun, pid, time.time())
        try:
            data = await _read_all(r)
            status = await _reap(pid)
        finally:
            self.running.pop(job.jid, None)
            os.close(self._lifelines.pop(job.jid))
            if serving is not None:
                serving.cancel()
                await asyncio.gather(serving, return_exceptions=True)
                self._channel_ends.pop(job.jid).close()
            self._ended.set()
        try:
            result = decode(data)
            if not isinstance(result, dict):
                raise DecodeError("not a map")
            return result
        except DecodeError:
            if entry.stop_reason:
                return _error(entry.stop_reason)
            return _error(f"the job process {_describe_exit(status)} before returning")

    def _child(self, job: Job, w: int, lifeline: int, channel: socket.socket | None) -> None:
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
            ctx = self.context
            if channel is not None and self.channels is not None:
                ctx = self.channels.job_context(ctx, channel)
            payload = _wire_safe(execute(self.registry, job, ctx), _objects(job))
            view = memoryview(payload)
            while view:
                n = os.write(w, view)
                view = view[n:]
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
                await asyncio.wait_for(self._ended.wait(), left)
            except asyncio.TimeoutError:
                break
        for jid, job in list(self.running.items()):
            job.stop_reason = (f"the minion was stopping: the job was still running after job_stop_timeout "
                               f"({grace:g}s) and was killed")
            log.warning("job %s (%s) still runs after job_stop_timeout (%gs): killing it", jid, job.fun, grace)
            self.kill(jid, signal.SIGKILL)

    def kill(self, jid: str, sig: int = signal.SIGTERM) -> bool:
        job = self.running.get(jid)
        if job is None:
            return False
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
    return {"return": f"ERROR: {message}", "retcode": 1, "success": False}


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


MAX_RETURN_BYTES = 12 * 1024 * 1024
"""Largest encoded return sent to the master (the frame limit is 16 MB, with room for the envelope)."""


RETURN_WRAPPER_OBJECTS = 256
"""Objects a sealed `_return` adds around a job's result besides the job's arguments (command, jid,
function names, ...); the result itself sits one level deeper there."""


def _objects(job: Job) -> int:
    """Objects the job's arguments add to its `_return` (they travel back as `fun_args`)."""
    return check_structure(encode([job.arg, job.kwarg]), MAX_OBJECTS, MAX_DEPTH + 1)


def _wire_safe(result: dict, reserve: int = 0) -> bytes:
    """The encoded result, or an error return saying why it cannot travel (never a silent loss): the
    master decodes the `_return` it goes into with the same limits (size, objects, depth), so the
    result leaves room for the wrapper and `reserve` more objects."""
    try:
        payload = encode(result)
        if len(payload) > MAX_RETURN_BYTES:
            raise ValueError(f"{len(payload)} bytes encoded, over the {MAX_RETURN_BYTES}-byte limit")
        check_structure(payload, MAX_OBJECTS - RETURN_WRAPPER_OBJECTS - reserve, MAX_DEPTH - 1)
        decode(payload)
        return payload
    except (TypeError, ValueError, OverflowError) as exc:
        return encode({"return": f"ERROR: the return value cannot be sent: {exc}", "retcode": 1, "success": False})


async def _read_all(fd: int) -> bytes:
    loop = asyncio.get_running_loop()
    os.set_blocking(fd, False)
    chunks: list[bytes] = []
    done = loop.create_future()

    def readable() -> None:
        try:
            while True:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    loop.remove_reader(fd)
                    if not done.done():
                        done.set_result(None)
                    return
                chunks.append(chunk)
        except BlockingIOError:
            return

    loop.add_reader(fd, readable)
    try:
        await done
    finally:
        loop.remove_reader(fd)
        os.close(fd)
    return b"".join(chunks)


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
