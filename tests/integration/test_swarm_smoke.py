"""CI smoke run of the minion swarm (bench/swarm.py): 50 simulated minions — the
real Minion class, each with its own key and sockets, only the function run
inline — against a real rx-master.  Every one must authenticate, subscribe and
return test.ping, and no return may be lost.  Correctness only: timings are the
benchmark's business (python -m bench), never asserted here."""

from __future__ import annotations

from rx.bench.swarm import ThreadedSwarm
from rx.client.local import LocalClient

N = 50


def test_swarm_of_50_all_return_ping_none_lost(sandbox):
    sandbox.start_master()
    with ThreadedSwarm(sandbox.cfg, N, prefix="smoke-") as swarm:
        status = swarm.wait_ready(timeout=60)
        assert status == {"n": N, "authenticated": N, "subscribed": N, "errors": 0}

        with LocalClient(str(sandbox.master_dir)) as client:
            returns = {}
            for item in client.cmd_iter("*", "test.ping", timeout=30, expect_minions=True):
                returns.update(item)
            echoed = client.cmd("smoke-*", "test.echo", ["hello swarm"], timeout=30)

        lost = sorted(m for m, r in returns.items() if r.get("failed"))
        assert lost == []
        assert {m: r["ret"] for m, r in returns.items()} == {m: True for m in swarm.ids}
        assert all(r["retcode"] == 0 for r in returns.values())
        assert echoed == {m: "hello swarm" for m in swarm.ids}
        assert swarm.swarm.errors == []
