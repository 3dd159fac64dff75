"""Logging for daemons and CLIs: stderr in the foreground, the log file when daemonized."""

from __future__ import annotations

import logging
import os
import sys
import time

FORMAT = "%(asctime)s [%(name)s][%(levelname)s][%(process)d] %(message)s"


def setup_logging(level: str, log_file: str = "", *, to_stderr: bool = True) -> None:
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.setLevel(getattr(logging, level.upper(), logging.WARNING))
    fmt = logging.Formatter(FORMAT)
    if to_stderr:
        h: logging.Handler = logging.StreamHandler(sys.stderr)
        h.setFormatter(fmt)
        root.addHandler(h)
    if log_file:
        os.makedirs(os.path.dirname(log_file) or ".", exist_ok=True)
        fh = logging.FileHandler(log_file)
        fh.setFormatter(fmt)
        root.addHandler(fh)


class RateLimitedLog:
    """At most one line per message (format string) every `interval` seconds, then a count of the lines
    held back: for what a peer can trigger at will (dropped frames, errors on bad input), so a flood
    cannot flood the log too."""

    def __init__(self, logger: logging.Logger, interval: float = 1.0, held: str = "more") -> None:
        self._log = logger
        self._interval = interval
        self._held = held
        self._state: dict[str, tuple[float, int]] = {}

    def __call__(self, level: int, msg: str, *args: object, exc_info: bool = False) -> None:
        now = time.monotonic()
        last, held = self._state.get(msg, (-self._interval, 0))
        if now - last < self._interval:
            self._state[msg] = (last, held + 1)
            return
        self._state[msg] = (now, 0)
        self._log.log(level, msg + (f" ({held} {self._held} since the last report)" if held else ""), *args,
                      exc_info=exc_info)
