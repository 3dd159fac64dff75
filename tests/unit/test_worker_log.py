"""rx.master.context.DropLog: a flood of bad requests or of unexpected errors logs one line (with one
traceback) per interval plus a count of the rest."""

from __future__ import annotations

import logging

from rx import logsetup
from rx.master.context import DropLog


def _fail(n: int, log: DropLog) -> None:
    for i in range(n):
        try:
            raise ValueError(f"boom {i}")
        except ValueError as exc:
            log(str(exc))


def test_one_traceback_per_interval_then_a_count(caplog, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(logsetup.time, "monotonic", lambda: clock[0])
    log = DropLog("mworker 0: unexpected error", "failed", level=logging.ERROR, interval=10.0, traceback=True)
    with caplog.at_level(logging.ERROR, logger="rx.master.handlers"):
        _fail(500, log)
        assert len(caplog.records) == 1
        first = caplog.records[0]
        assert first.exc_info is not None and "boom 0" in first.getMessage()
        clock[0] += 9.9
        _fail(10, log)
        assert len(caplog.records) == 1
        clock[0] += 0.2
        _fail(1, log)
    assert len(caplog.records) == 2
    assert "(509 more failed since the last report)" in caplog.records[1].getMessage()
    assert caplog.records[1].exc_info is not None


def test_drop_log_keeps_its_line_without_traceback(caplog, monkeypatch):
    monkeypatch.setattr(logsetup.time, "monotonic", lambda: 50.0)
    log = DropLog()
    with caplog.at_level(logging.WARNING, logger="rx.master.handlers"):
        log("bad frame")
        log("another")
    assert [r.getMessage() for r in caplog.records] == ["dropped request: bad frame"]
    assert not caplog.records[0].exc_info
