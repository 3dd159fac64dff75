"""What libzmq alone holds per connection: a bare socket of the type each master relay binds (ROUTER for the
request server, XPUB for the publisher), with the relay's options, N connections from another process, a
request and a reply on each ROUTER connection and a few publications on the XPUB, and the socket process's RSS
before and after, divided by N.  No rx code runs in the measured process, so this is the floor under the master's
per-minion memory that socket options and rx's own code cannot go below (bench/RESULTS.md compares it with the
master's slope).

    python -m bench.zmq_floor [-n 3000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

MEASURED = r"""
import json, subprocess, sys, time
import zmq
from rx.transport.zmq_devices import KEEPALIVE, PEER_HWM, REPLY_HWM, SUBSCRIPTION_HWM, SUBSCRIPTION_MAX_BYTES
from rx.transport.codec import MAX_FRAME_BYTES

n, kind, peers_src = int(sys.argv[1]), sys.argv[2], sys.argv[3]

def rss_kb():
    with open("/proc/self/status") as f:
        return int(f.read().split("VmRSS:")[1].split()[0])

ctx = zmq.Context()
sock = ctx.socket(zmq.ROUTER if kind == "router" else zmq.XPUB)
options = {zmq.RCVHWM: PEER_HWM, zmq.SNDHWM: REPLY_HWM, zmq.MAXMSGSIZE: MAX_FRAME_BYTES} if kind == "router" else {
    zmq.XPUB_MANUAL: 1, zmq.MAXMSGSIZE: SUBSCRIPTION_MAX_BYTES, zmq.RCVHWM: SUBSCRIPTION_HWM}
for option, value in {**options, **KEEPALIVE}.items():
    sock.setsockopt(option, value)
port = sock.bind_to_random_port("tcp://127.0.0.1")
monitor = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
time.sleep(0.5)
before = rss_kb()
peers = subprocess.Popen([sys.executable, "-c", peers_src, str(n), kind, str(port)], stdin=subprocess.PIPE)
shaken = 0
while shaken < n and monitor.poll(60_000):
    monitor.recv_multipart()
    shaken += 1
if kind == "router":
    served = 0
    while served < n and sock.poll(10_000):
        peer, *_ = sock.recv_multipart()
        sock.send_multipart([peer, b"r" * 200])
        served += 1
else:
    subscribed = 0
    while subscribed < n and sock.poll(10_000):
        msg = sock.recv()
        sock.setsockopt(zmq.SUBSCRIBE, msg[1:])
        subscribed += 1
    for _ in range(3):
        sock.send_multipart([b"all", b"p" * 300])
time.sleep(1.0)
after = rss_kb()
peers.kill()
print(json.dumps({"kind": kind, "n": shaken, "before_kb": before, "after_kb": after,
                  "kb_per_connection": (after - before) / max(shaken, 1)}))
"""

PEERS = r"""
import sys, time
import zmq
n, kind, port = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = zmq.Context()
ctx.set(zmq.MAX_SOCKETS, n + 100)
socks = []
for _ in range(n):
    s = ctx.socket(zmq.DEALER if kind == "router" else zmq.SUB)
    if kind != "router":
        s.setsockopt(zmq.SUBSCRIBE, b"all")
    s.connect(f"tcp://127.0.0.1:{port}")
    if kind == "router":
        s.send(b"q" * 200)
    socks.append(s)
sys.stdin.read()
"""


def measure(n: int = 3000) -> dict:
    """KB of RSS per connection of a bare ROUTER and a bare XPUB (each in a fresh process), and their sum: what
    libzmq holds for one minion (it has one connection to each)."""
    out: dict = {"n": n}
    for kind in ("router", "xpub"):
        done = subprocess.run([sys.executable, "-c", MEASURED, str(n), kind, PEERS], capture_output=True, text=True, timeout=300,
                              check=True)
        out[kind] = json.loads(done.stdout.strip().splitlines()[-1])
    out["kb_per_minion"] = out["router"]["kb_per_connection"] + out["xpub"]["kb_per_connection"]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.zmq_floor", description=__doc__.split("\n\n")[0])
    p.add_argument("-n", type=int, default=3000, help="connections to each socket (default 3000)")
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    r = measure(a.n)
    print(f"libzmq per connection, {r['n']} connections: ROUTER {r['router']['kb_per_connection']:.1f} KB, "
          f"XPUB {r['xpub']['kb_per_connection']:.1f} KB, per minion {r['kb_per_minion']:.1f} KB "
          f"({time.perf_counter() - t0:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
