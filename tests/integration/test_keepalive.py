"""Every connection between a real minion and a real master, at both ends, has TCP keepalive armed (the
kernel's keepalive timer in /proc/net/tcp), so a peer whose host vanished without closing its connection is
dropped by the kernel within ~35 s (transport.zmq_devices.KEEPALIVE), with no ZMTP heartbeats to wake
either process."""

from __future__ import annotations

from pathlib import Path

from tests.support.procs import wait_for

ESTABLISHED, KEEPALIVE_TIMER = 0x01, 2


def _connections(ports: set[int]) -> list[tuple[int, int, int]]:
    """(local port, remote port, timer kind) of the established loopback TCP connections touching `ports`."""
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            local, remote = int(f[1].rsplit(":", 1)[1], 16), int(f[2].rsplit(":", 1)[1], 16)
            if int(f[3], 16) == ESTABLISHED and (local in ports or remote in ports):
                out.append((local, remote, int(f[5].split(":")[0], 16)))
    return out


def test_both_ends_of_every_minion_connection_have_keepalive(fleet):
    ports = {fleet.pub_port, fleet.ret_port}
    # two minions: a publish and a request connection each, seen from both ends
    wait_for(lambda: len(_connections(ports)) >= 8, what="the minions' four connections, both ends")
    conns = wait_for(lambda: (c := _connections(ports)) and all(t == KEEPALIVE_TIMER for _l, _r, t in c) and c,
                     what="keepalive timers on every connection")
    assert {local for local, _r, _t in conns} >= ports, "the master's ends"
    assert any(remote in ports for _l, remote, _t in conns), "the minions' ends"
