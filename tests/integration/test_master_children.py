"""Issue #9's reliability suite, the master's side: while jobs stream to the minions, each of the
master's children in turn is killed with SIGKILL, and the supervisor itself is killed with SIGKILL.
What must hold: every job the master accepted (the client got its jid) ends with every minion's
return in the job store; the killed child comes back by itself; a killed supervisor leaves no child
behind holding the ports, and the next rx-master starts and serves the same minions."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from rx.client.local import LocalClient
from rx.master.daemon import process_name
from tests.support.procs import children_of, comm, is_running, wait_for
from tests.support.sandbox import master_child, stored_returns

STREAM = 30
"""Jobs published one after another; the fault is injected after the first third of them."""
BOTH = {"m1": True, "m2": True}




class JobStream(threading.Thread):
    """Publishes `test.ping` to every minion STREAM times, a few milliseconds apart, keeping the jids the
    master accepted and the errors of the publishes it did not (those the client was told about)."""

    def __init__(self, box, stop_when_refused: bool = False) -> None:
        super().__init__(daemon=True)
        self.box = box
        self.stop_when_refused = stop_when_refused
        self.jids: list[str] = []
        self.refused: list[str] = []
        self.third = threading.Event()

    def run(self) -> None:
        with LocalClient(cfg=self.box.cfg) as client:
            for i in range(STREAM):
                try:
                    self.jids.append(client.run_job("*", "test.ping")["jid"])
                except Exception as exc:  # the client was told: this job is not the master's to keep
                    self.refused.append(f"{type(exc).__name__}: {exc}")
                    if self.stop_when_refused:
                        self.third.set()
                        return
                if i == STREAM // 3:
                    self.third.set()
                time.sleep(0.02)  # pacing, so the fault lands mid-stream (no synchronisation relies on it)


def _every_return_stored(box, stream: JobStream, least: int = STREAM // 2) -> None:
    assert len(stream.jids) >= least, stream.refused
    for jid in stream.jids:
        wait_for(lambda: {m: r.get("return") for m, r in stored_returns(box.cfg, jid).items()} == BOTH, timeout=60,
                 what=f"both returns of {jid} in the job store")


@pytest.mark.parametrize("name", ["publisher", "event-publisher", "request-server", "mworker-0", "mworker-1",
                                  "maintenance"])
def test_a_child_killed_during_a_job_stream_loses_no_job(fleet, name):
    victim = master_child(fleet.master.pid, name)
    assert victim is not None, f"no child named {process_name(name)} among {children_of(fleet.master.pid)}"
    stream = JobStream(fleet)
    stream.start()
    assert stream.third.wait(60)
    os.kill(victim, signal.SIGKILL)
    stream.join(120)
    assert not stream.is_alive()
    wait_for(lambda: master_child(fleet.master.pid, name) not in (None, victim), what=f"{name} restarted")
    _every_return_stored(fleet, stream)
    assert f"child {name} (pid {victim}) was killed by SIGKILL" in fleet.master.output()
    with LocalClient(cfg=fleet.cfg) as c:
        assert c.cmd("*", "test.ping") == BOTH


def test_a_killed_supervisor_takes_its_children_with_it_and_a_new_master_serves_the_minions(fleet):
    children = children_of(fleet.master.pid)
    assert {comm(pid) for pid in children} >= {process_name("publisher"), process_name("mworker-0")}
    stream = JobStream(fleet, stop_when_refused=True)
    stream.start()
    assert stream.third.wait(60)
    os.kill(fleet.master.pid, signal.SIGKILL)
    stream.join(120)
    wait_for(lambda: not any(is_running(pid) for pid in children), what="the children to end with the supervisor")
    fleet.master.stop()
    fleet.start_master()
    _every_return_stored(fleet, stream, least=STREAM // 3)
    with LocalClient(cfg=fleet.cfg) as c:
        wait_for(lambda: c.cmd("*", "test.ping", timeout=2) == BOTH, timeout=30, what="both minions back")
