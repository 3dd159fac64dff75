"""Runners: functions run on the master host by `rx-run` and `RunnerClient` (Salt's runners).

`RUNNERS` is the allow-list of the built-in runner modules: only these files, and in each only the
names in its `__all__`, can be called.  Custom runner modules come from installed packages (the
`rx.runners` entry-point group: `name = package.module`) and from `<cachedir>/extmods/runners/*.py`
(filled by the file server's `_runners` sync); they follow the same rules (an `__all__` is
required), and cannot replace a built-in module.  `rx.client.runnerload` finds and checks them.

A runner function gets its arguments from the command line (`key=value` words are keyword
arguments).  What it needs of the master (the config, the services, a LocalClient, the `-t` and
`-y` of the command line, a way to stream lines) it receives explicitly: a function whose first
parameter is named `ctx` is called with a `RunnerContext` there.  It may be a coroutine function
(awaited) or a plain one (run in a thread, so it may block).  It fails by raising `CommandError`
(exit 1), `BadRequest` (bad input, exit 2) or `NeedsConfirmation` (exit 7); its return value is
printed with the chosen outputter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from rx.client.results import BadRequest, ClientError
from rx.modules import CommandError, Result

if TYPE_CHECKING:
    from rx.client.local import AsyncLocalClient
    from rx.config import MasterConfig
    from rx.master.services import Services

__all__ = ["RUNNERS", "RunnerContext", "NeedsConfirmation", "CommandError", "BadRequest", "Result",
           "EXIT_NEEDS_CONFIRMATION"]

RUNNERS: dict[str, str] = {
    "cache": "cache",
    "event": "event",
    "jobs": "jobs",
    "manage": "manage",
    "state": "state",
}
"""Built-in runner files (`rx/runners/<file>.py`) and the runner module name each serves."""

EXIT_NEEDS_CONFIRMATION = 7


class NeedsConfirmation(ClientError):
    """The runner would change state (remove keys) and was not confirmed with `-y`/`--yes`."""

    exit_code = EXIT_NEEDS_CONFIRMATION


def _print_line(line: str) -> None:
    print(line, flush=True)


@dataclass
class RunnerContext:
    """What a runner function may use.  The runner client opens the services and the LocalClient on
    first use and closes them after the call."""

    cfg: "MasterConfig"
    timeout: float | None = None
    """`rx-run -t`: how long runners that wait (pings, event watches) wait; None: their default"""
    confirmed: bool = False
    """`rx-run -y`/`--yes`: the user agreed beforehand to what the runner changes"""
    jid: str = ""
    """the runner job's jid when it runs in the background (`--async`), else empty"""
    emit: Callable[[str], None] = _print_line
    """where a runner streams its lines as they come (event.watch): stdout under rx-run"""
    _services: "Services | None" = field(default=None, repr=False)
    _client: "AsyncLocalClient | None" = field(default=None, repr=False)

    def services(self) -> "Services":
        """The master's services (keys, jobs, events, status, presence) over its stores."""
        if self._services is None:
            from rx.master.services import open_services
            self._services = open_services(self.cfg)
        return self._services

    def client(self) -> "AsyncLocalClient":
        """A LocalClient of the master on this host (for runners that publish jobs, e.g. pings)."""
        if self._client is None:
            from rx.client.local import AsyncLocalClient
            self._client = AsyncLocalClient(cfg=self.cfg)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        if self._services is not None:
            self._services.close()
            self._services = None
