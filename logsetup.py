"""Logging for daemons and CLIs: stderr in the foreground, the log file when daemonized."""

from __future__ import annotations

import logging
import os
import sys

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
