"""The master's two TCP ports listen with the queue `zmq_backlog` sets (transport.zmq_devices.BACKLOG).

While the process behind a port is stopped (SIGSTOP), nothing accepts: the kernel completes at most
backlog + 1 handshakes and drops the rest of the SYNs, which a client then sends again 1, 3, 7 ... s
later.  libzmq's own default is 100, which made a 10,000-minion restart wait on those retries."""

from __future__ import annotations

import os
import select
import signal
import socket
import time

import pytest

from tests.support.procs import wait_for
from tests.support.sandbox import master_child

BACKLOG = 8
TRIES = 40


def _completed_handshakes(port: int, tries: int, wait: float = 1.0) -> int:
    """How many of `tries` connections to `port` complete their handshake within `wait` seconds."""
    socks = []
    try:
        for _ in range(tries):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            socks.append(s)
        done: set[socket.socket] = set()
        deadline = time.monotonic() + wait
        while len(done) < tries and (left := deadline - time.monotonic()) > 0:
            _, writable, _ = select.select([], [s for s in socks if s not in done], [], left)
            done.update(writable)
        return sum(1 for s in done if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0)
    finally:
        for s in socks:
            s.close()


def _all_threads_stopped(pid: int) -> bool:
    """SIGSTOP is delivered asynchronously: every thread of `pid` shows state T once it took effect."""
    states = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/stat") as f:
            states.append(f.read().rsplit(")", 1)[1].split()[0])
    return bool(states) and all(state in ("T", "t") for state in states)


@pytest.mark.parametrize("child, port_attr", [("requests", "ret_port"), ("publisher", "pub_port")])
def test_a_stopped_port_holds_at_most_its_backlog(sandbox, child, port_attr):
    sandbox.start_master(zmq_backlog=BACKLOG)
    pid = master_child(sandbox.master.pid, child)
    assert pid is not None
    port = getattr(sandbox, port_attr)
    wait_for(lambda: _completed_handshakes(port, 1, wait=0.2), what=f"port {port} to listen")  # bound after "ready"
    os.kill(pid, signal.SIGSTOP)
    try:
        wait_for(lambda: _all_threads_stopped(pid), what=f"rx-{child} to stop")
        completed = _completed_handshakes(port, TRIES)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert 1 <= completed <= BACKLOG + 1, f"{completed} of {TRIES} connections completed with zmq_backlog {BACKLOG}"
    r = sandbox.run_cli("rx-run", "manage.status", timeout=60)
    assert r.returncode == 0, r.stderr
