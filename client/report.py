"""What `rx` prints and exits with: collects returns, streams them when the outputter allows,
and decides the exit code (DESIGN §6)."""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

from rx.client.results import EXIT_FAILED, EXIT_MISSING, EXIT_OK, NOT_STARTED, STILL_RUNNING

REASON_STATUS = {"no grains cached": "unknown", NOT_STARTED: "skipped", STILL_RUNNING: "running"}
"""A missing minion's status by the reason it did not return ("missing" for any other reason)."""


@dataclass
class Report:
    """Collects returns, streams them when the outputter allows, and decides the exit code."""

    opts: argparse.Namespace
    stream: TextIO
    color: bool
    results: dict = field(default_factory=dict)
    status: dict = field(default_factory=dict)
    jid: str = ""
    targeted: int = 0
    started: float = field(default_factory=time.monotonic)
    bar: Any = None
    """A ProgressBar (rx -p): cleared before each output, redrawn after each return."""

    @property
    def streaming(self) -> bool:
        from rx.client.output import STREAMING
        return self.opts.out in STREAMING and not self.opts.static

    def add(self, item: dict) -> None:
        for mid, r in item.items():
            self.results[mid] = r["ret"]
            if r.get("failed"):
                self.status[mid] = REASON_STATUS.get(r.get("reason"), "missing")
            else:
                self.status[mid] = "ok" if r.get("retcode") == 0 else "failed"
            if r.get("failed") and getattr(self.opts, "hide_timeout", False):
                del self.results[mid]  # --hide-timeout: not shown, still counted (the exit code stays 3)
            elif self.streaming:
                self._emit({mid: r["ret"]})
        if self.bar is not None:
            self.bar.update(done=self.count("ok") + self.count("failed"))

    def _emit(self, data: dict) -> None:
        from rx.client.output import render
        text = render(self.opts.out, data, color=self.color, status=self.status, indent=indent_of(self.opts),
                      escape=not self.opts.allow_control_chars)
        if text:
            if self.bar is not None:
                self.bar.clear()
            print(text, file=self.stream, flush=True)

    def finish(self) -> None:
        if not self.streaming:
            self._emit(self.results)

    def count(self, state: str) -> int:
        return sum(1 for s in self.status.values() if s == state)

    def summary(self) -> str:
        return (f"Summary: targeted {self.targeted}, returned ok {self.count('ok')}, failed {self.count('failed')}, "
                f"did not return {self.count('missing') + self.count('unknown') + self.count('running')}, "
                + (f"not started {self.count('skipped')}, " if self.count("skipped") else "") +
                f"elapsed {time.monotonic() - self.started:.2f}s, jid {self.jid or '-'}")

    def exit_code(self) -> int:
        if self.count("missing") or self.count("running"):
            return EXIT_MISSING
        if self.count("failed"):
            return EXIT_FAILED
        return EXIT_OK


def indent_of(opts: argparse.Namespace) -> int | None:
    if opts.out_indent is None:
        return 4 if opts.out == "json" else 2
    return None if opts.out_indent < 0 else opts.out_indent
