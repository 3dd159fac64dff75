"""RunnerClient: run runners (`manage.up`, `event.send`, `jobs.lookup_jid` ...) from Python, on the
master host as the master's user, with the same functions and checks as `rx-run`.

    from rx.client.runner import RunnerClient
    runner = RunnerClient()                       # or RunnerClient(config_dir="/etc/rx")
    runner.cmd("manage.up", kwarg={"timeout": 3})  # ['m1', 'm2']
    jid = runner.cmd_async("manage.versions")     # runs in the background; result in the job store

As in Salt, string items of `arg` that read `key=value` become keyword arguments.  `AsyncRunnerClient`
is the asyncio API.  Errors are rx.client.results' types (BadRequest for an unknown runner or wrong
arguments, MasterUnreachable, MasterError), NeedsConfirmation, and CommandError from the runner.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import subprocess
import sys
from typing import Any, Callable, Sequence

from rx.client.cli import split_args
from rx.client.runnerload import RunnerRegistry, check_args
from rx.config import MasterConfig, load_master_config
from rx.master.services.files import runner_files
from rx.modules import Result, takes_context
from rx.runners import RunnerContext

__all__ = ["RunnerClient", "AsyncRunnerClient", "RunnerRegistry"]

ASYNC_LINES_MAX = 10_000
"""Lines a background runner (`--async`) streams that are kept in its stored return."""


def salt_style_args(arg: Sequence | None, kwarg: dict | None) -> tuple[list, dict]:
    """Salt's RunnerClient takes `key=value` strings in `arg` as keyword arguments (values parsed as YAML)."""
    words = [a for a in arg or () if isinstance(a, str)]
    if len(words) != len(arg or ()):
        return list(arg or ()), dict(kwarg or {})
    args, kwargs = split_args(words)
    return args, {**kwargs, **(kwarg or {})}


class AsyncRunnerClient:
    def __init__(self, cfg: MasterConfig | None = None, *, config_dir: str | None = None) -> None:
        self.cfg = cfg or load_master_config(config_dir)
        self.registry = RunnerRegistry(self.cfg.cachedir, file_runners=lambda: runner_files(self.cfg))

    def functions(self) -> list[str]:
        return self.registry.functions()

    def doc(self, pattern: str = "*") -> dict[str, str]:
        return self.registry.doc(pattern)

    def check(self, fun: str, arg: Sequence | None = None, kwarg: dict | None = None) -> Callable:
        """The runner function, once it is known to take these arguments (BadRequest otherwise)."""
        func = self.registry.resolve(fun)
        check_args(fun, func, list(arg or ()), dict(kwarg or {}))
        return func

    async def cmd(self, fun: str, arg: Sequence | None = None, kwarg: dict | None = None, *,
                  timeout: float | None = None, confirm: bool = False,
                  emit: Callable[[str], None] | None = None) -> Any:
        """Run a runner and return what it returns.  `timeout`: `rx-run -t`; `confirm`: `rx-run -y`;
        `emit(line)` receives the lines a streaming runner prints (default: stdout)."""
        args, kwargs = salt_style_args(arg, kwarg)
        return await self.call(fun, args, kwargs, timeout=timeout, confirm=confirm, emit=emit)

    async def call(self, fun: str, args: list, kwargs: dict, *, timeout: float | None = None, confirm: bool = False,
                   jid: str = "", emit: Callable[[str], None] | None = None) -> Any:
        """`cmd` with the arguments taken exactly as given (what rx-run calls: it has parsed its words)."""
        func = self.check(fun, args, kwargs)
        ctx = RunnerContext(cfg=self.cfg, timeout=timeout, confirmed=confirm, jid=jid)
        if emit is not None:
            ctx.emit = emit
        try:
            call_args = [ctx, *args] if takes_context(func) else args
            if inspect.iscoroutinefunction(func):
                return await func(*call_args, **kwargs)
            return await asyncio.to_thread(func, *call_args, **kwargs)
        finally:
            await ctx.aclose()

    async def cmd_async(self, fun: str, arg: Sequence | None = None, kwarg: dict | None = None, *,
                        timeout: float | None = None, confirm: bool = False, user: str = "") -> str:
        """Record a runner job, start it in a process of its own and return its jid at once; its return is
        stored in the job store under `<host>_master` (look it up with jobs.lookup_jid)."""
        args, kwargs = salt_style_args(arg, kwarg)
        return await self.start(fun, args, kwargs, timeout=timeout, confirm=confirm, user=user)

    async def start(self, fun: str, args: list, kwargs: dict, *, timeout: float | None = None, confirm: bool = False,
                    user: str = "", limit: float | None = None) -> str:
        """`cmd_async` with the arguments taken exactly as given; `limit`: the job is stopped after that many
        seconds (rx-api's ceiling: a user's runner never runs for ever)."""
        self.check(fun, args, kwargs)
        from rx.master.services import open_services
        from rx.master.services.runner_jobs import RunnerJobs
        services = open_services(self.cfg)
        try:
            job = await RunnerJobs(services.stores, services.events).start(fun, args, kwargs, user or _user())
        finally:
            services.close()
        _spawn({"config_dir": self.cfg.config_dir, "jid": job.jid, "fun": fun,
                "arg": args, "kwarg": kwargs, "timeout": timeout, "confirm": confirm, "limit": limit})
        return job.jid

    async def run_job(self, jid: str, fun: str, args: list, kwargs: dict, *, timeout: float | None,
                      confirm: bool, limit: float | None = None) -> None:
        """Run a recorded runner job and store its return (what the background process does); stopped after
        `limit` seconds when given (its return: the lines it printed, else an error)."""
        from rx.master.services import UnknownJob, open_services
        from rx.master.services.runner_jobs import RunnerJobs
        lines: list[str] = []

        def keep(line: str) -> None:
            if len(lines) < ASYNC_LINES_MAX:
                lines.append(line)
        try:
            async with asyncio.timeout(limit):
                value, retcode = await self.call(fun, args, kwargs, timeout=timeout, confirm=confirm, jid=jid,
                                                 emit=keep), 0
            if isinstance(value, Result):
                value, retcode = value.value, value.retcode
            elif value is None and lines:
                value = lines
        except TimeoutError:
            value, retcode = lines or f"ERROR: {fun}: still running after {limit:g}s: stopped", 1
        except Exception as exc:
            value, retcode = f"ERROR: {fun}: {exc}", getattr(exc, "exit_code", 1) or 1
        services = open_services(self.cfg)
        try:
            jobs = RunnerJobs(services.stores, services.events)
            try:
                record = await services.jobs.job(jid)
            except UnknownJob:
                return
            await jobs.finish(record.job, value, retcode)
        finally:
            services.close()


def _user() -> str:
    try:
        import pwd
        return pwd.getpwuid(os.getuid()).pw_name
    except (KeyError, ImportError):
        return str(os.getuid())


def _spawn(spec: dict) -> None:
    """Start `python -m rx.client.runjob` in a session of its own, handing it the job on stdin (msgpack, so
    the arguments keep their types); it outlives this process."""
    from rx.transport.codec import encode
    proc = subprocess.Popen([sys.executable, "-m", "rx.client.runjob"], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            close_fds=True)
    assert proc.stdin is not None
    proc.stdin.write(encode(spec))
    proc.stdin.close()


class RunnerClient:
    """The synchronous RunnerClient (not for use inside a running event loop: use AsyncRunnerClient there).
    `opts` may be a MasterConfig (Salt passes its opts dict here); `config_dir` else."""

    def __init__(self, opts: MasterConfig | None = None, *, config_dir: str | None = None) -> None:
        self._client = AsyncRunnerClient(opts, config_dir=config_dir)
        self.cfg = self._client.cfg

    def functions(self) -> list[str]:
        """Every runner available (`module.function`)."""
        return self._client.functions()

    def doc(self, pattern: str = "*") -> dict[str, str]:
        """`{fun: signature and docstring}` of the runners matching a glob."""
        return self._client.doc(pattern)

    def cmd(self, fun: str, arg: Sequence | None = None, kwarg: dict | None = None, **kw: Any) -> Any:
        """Run a runner and return its value; see AsyncRunnerClient.cmd."""
        return asyncio.run(self._client.cmd(fun, arg, kwarg, **kw))

    def cmd_async(self, fun: str, arg: Sequence | None = None, kwarg: dict | None = None, **kw: Any) -> str:
        """Start a runner in the background; its jid (see AsyncRunnerClient.cmd_async)."""
        return asyncio.run(self._client.cmd_async(fun, arg, kwarg, **kw))
