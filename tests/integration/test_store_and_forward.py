"""Nothing a minion returns is lost (issue #11): returns made while the master is down, or while its
PostgreSQL job store is stopped or restarting, wait in the minions' spools and are stored once it is back.
Faults are done to the real daemons and the real server."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from rx.client.local import LocalClient
from rx.master.services import UnknownJob, open_services
from tests.support.procs import children_of, wait_for
from tests.support.sandbox import load_minion

FAST_RETRY = {"timeout": 1, "return_retry_timer_max": 0.5}
FLEET = [f"m{i:02d}" for i in range(10)]


def stored(cfg, jid: str) -> dict:
    """The returns the job store holds for `jid` (closing the store's connection pool in the loop it used)."""
    async def read() -> dict:
        services = open_services(cfg)
        try:
            return await services.jobs.returns(jid)
        except UnknownJob:
            return {}
        finally:
            await services.stores.aclose()
            services.events.close()
    return asyncio.run(read())


def spooled(box, minion_id: str) -> int:
    return len(list((Path(load_minion(box.minion_dir(minion_id)).cachedir) / "return_spool").glob("*.ret")))


def test_returns_made_while_the_master_is_down_are_all_stored(sandbox):
    """The issue's test: the master stops 2 s into a `test.sleep 8` job on 10 minions and is started again
    once every minion has finished it (the issue says at 15 s): all 10 returns are in the job store."""
    sandbox.minion_defaults.update(FAST_RETRY)
    sandbox.start_master()
    sandbox.start_minions(FLEET)
    with LocalClient(cfg=sandbox.cfg) as c:
        jid = c.cmd_async("*", "test.sleep", [8])
    for mid in FLEET:  # every minion runs it: now the master goes
        wait_for(lambda: children_of(sandbox.minions[mid].pid), what=f"the job running on {mid}")
    assert sandbox.stop_master() == 0
    for mid in FLEET:
        wait_for(lambda: spooled(sandbox, mid) == 1, timeout=60, what=f"{mid}'s return in its spool")
    assert stored(sandbox.cfg, jid) == {}

    sandbox.start_master()
    returns = wait_for(lambda: len(r := stored(sandbox.cfg, jid)) == len(FLEET) and r, timeout=60,
                       what="all 10 returns in the job store")
    assert sorted(returns) == FLEET
    assert all(r["return"] is True and r["retcode"] == 0 and r["end_time"] - r["start_time"] >= 8
               for r in returns.values())
    for mid in FLEET:
        wait_for(lambda: spooled(sandbox, mid) == 0, what=f"{mid}'s spool emptied")


def _pg_fleet(sandbox, postgres):
    sandbox.minion_defaults.update(FAST_RETRY)
    sandbox.master_overrides.update(job_store_backend="postgres", postgres_dsn=postgres.new_database())
    sandbox.start_master()
    sandbox.start_minions(["m1", "m2"])
    return sandbox


def test_postgresql_stopped_under_a_running_master_loses_no_return(sandbox, postgres):
    box = _pg_fleet(sandbox, postgres)
    with LocalClient(cfg=box.cfg) as c:
        assert c.cmd("*", "test.ping") == {"m1": True, "m2": True}
        postgres.stop()
        try:
            jids = [c.cmd_async("*", "test.echo", [f"while-down-{n}"]) for n in range(3)]
            for mid in ("m1", "m2"):
                wait_for(lambda: spooled(box, mid) == 3, timeout=60, what=f"{mid}'s 3 returns in its spool")
            log = box.master.output()
            assert re.search(r"PostgreSQL \(.*\) is unavailable", log) and "retry later" in log, log[-3000:]
        finally:
            postgres.start()
        for n, jid in enumerate(jids):
            returns = wait_for(lambda: len(r := stored(box.cfg, jid)) == 2 and r, timeout=60,
                               what=f"job {jid}'s returns in PostgreSQL")
            assert {m: r["return"] for m, r in returns.items()} == {"m1": f"while-down-{n}", "m2": f"while-down-{n}"}
        wait_for(lambda: "answers again" in box.master.output(), what="the master to log PostgreSQL is back")
        for mid in ("m1", "m2"):
            wait_for(lambda: spooled(box, mid) == 0, what=f"{mid}'s spool emptied")
        assert c.cmd("*", "test.ping") == {"m1": True, "m2": True}


def test_postgresql_restarted_between_jobs_costs_no_return(sandbox, postgres):
    """Every pooled connection is dead after a restart: the next returns are stored at once (a fresh
    connection is tried), not left to the spool."""
    box = _pg_fleet(sandbox, postgres)
    with LocalClient(cfg=box.cfg) as c:
        for _ in range(3):  # every worker's pool holds a connection
            assert c.cmd("*", "test.ping") == {"m1": True, "m2": True}
        postgres.stop()
        postgres.start()
        assert c.cmd("*", "test.echo", ["after-restart"], timeout=20) == {"m1": "after-restart", "m2": "after-restart"}
    assert "is unavailable" not in box.master.output()


def test_a_master_starts_while_its_postgresql_is_down(sandbox, postgres):
    """The master starts (its tables are made once the server answers); the job's returns wait in the spools."""
    sandbox.minion_defaults.update(FAST_RETRY)
    sandbox.master_overrides.update(job_store_backend="postgres", postgres_dsn=postgres.new_database())
    postgres.stop()
    try:
        sandbox.start_master()
        sandbox.start_minions(["m1"])
        assert "cannot reach PostgreSQL" in sandbox.master.output()
        with LocalClient(cfg=sandbox.cfg) as c:
            jid = c.cmd_async("m1", "test.echo", ["started-down"])
        wait_for(lambda: spooled(sandbox, "m1") == 1, timeout=60, what="m1's return in its spool")
    finally:
        postgres.start()
    returns = wait_for(lambda: stored(sandbox.cfg, jid), timeout=60, what="the return in PostgreSQL")
    assert returns["m1"]["return"] == "started-down"
