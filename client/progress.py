"""`rx -p`: a bar of returned/expected minions on stderr, redrawn in place, on a terminal only (on a pipe or a
file it draws nothing, so logs and captured stderr stay clean)."""

from __future__ import annotations

import asyncio
import logging
import shutil
import sys
import time
from typing import Any, TextIO

CLEAR = "\r\033[K"
log = logging.getLogger("rx.client")


def bar_line(done: int, total: int, elapsed: float, columns: int) -> str:
    """`[#####.....]  3/10 returned  4.2s`, at most `columns` wide (the bar takes what is left, 10 at least)."""
    tail = f"  {done}/{total or '?'} returned  {elapsed:.1f}s"
    width = max(10, min(50, columns - len(tail) - 3))
    filled = width if total and done >= total else (width * done // total if total else 0)
    return f"[{'#' * filled}{'.' * (width - filled)}]{tail}"[:max(columns - 1, 1)]


class ProgressBar:
    """Draws `bar_line` on `stream` when it is a terminal; every method is a no-op otherwise.  Call `clear()`
    before writing anything else to the same terminal, `close()` at the end (it erases the bar)."""

    def __init__(self, stream: TextIO, enabled: bool = True) -> None:
        self.stream = stream
        self.on = enabled and _isatty(stream)
        self.started = time.monotonic()
        self.done = 0
        self.total = 0
        self.shown = False

    def update(self, done: int | None = None, total: int | None = None) -> None:
        if done is not None:
            self.done = done
        if total is not None:
            self.total = total
        self.draw()

    def draw(self) -> None:
        if not self.on:
            return
        columns = shutil.get_terminal_size((80, 24)).columns
        self.stream.write(CLEAR + bar_line(self.done, self.total, time.monotonic() - self.started, columns))
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        if self.on and self.shown:
            self.stream.write(CLEAR)
            self.stream.flush()
            self.shown = False

    def close(self) -> None:
        self.clear()
        self.on = False


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class JobNews:
    """Says each job as soon as it is published (`--show-jid`: `jid: JID`, `-v`: `Executing job with jid JID`) and
    keeps the bar's total and clock current.  `jobs` is the list the client appends each published job to;
    `poll()` reads it (call it before handling a return; `run()` calls it until cancelled)."""

    TICK = 0.1

    def __init__(self, opts: Any, report: Any, jobs: list, bar: ProgressBar, *, batch: bool = False) -> None:
        self.opts, self.report, self.jobs, self.bar, self.batch = opts, report, jobs, bar, batch
        self.seen = 0

    def poll(self) -> None:
        from rx.client.output import HUMAN
        for pub in self.jobs[self.seen:]:
            self.seen += 1
            log.debug("job %s published to %d minion(s)", pub.jid, len(pub.minions))
            if not self.batch and not self.report.jid:
                self.report.jid, self.report.targeted = pub.jid, len(pub.minions)
            if not pub.minions:
                continue
            self.bar.clear()
            if self.opts.verbose:
                print(f"Executing job with jid {pub.jid}", file=sys.stderr, flush=True)
            if self.opts.show_jid:
                human = self.opts.out in HUMAN + ("raw",)  # json, jsonl, yaml: stdout stays parseable
                print(f"jid: {pub.jid}", file=sys.stdout if human else sys.stderr, flush=True)
        self.bar.update(total=self.report.targeted)

    async def run(self) -> None:
        while True:
            self.poll()
            await asyncio.sleep(self.TICK)
