"""A corrupt SQLite returns database (issue #11, bad input): the master says so clearly, moves the file
aside at its start and goes on with a new one; the jobs whose returns were in it say they may be lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from rx.client.local import LocalClient
from rx.master.store.sqlite_jobs import DB_NAME, corrupt
from tests.support.procs import wait_for
from tests.support.lc_contract import merged


@pytest.mark.parametrize("damage", ["not-a-database", "malformed"])
def test_a_corrupt_returns_database_is_moved_aside_at_start(fleet, damage):
    with LocalClient(cfg=fleet.cfg) as c:
        before = c.run_job("*", "test.ping")["jid"]
        assert merged(c.get_cli_returns(before, ["m1", "m2"], timeout=20)) == {"m1": True, "m2": True}
    assert fleet.stop_master() == 0
    db = Path(fleet.cfg.jobs_dir) / DB_NAME
    if damage == "not-a-database":
        db.write_bytes(b"this is not an SQLite database, whatever it was" * 100)
        for suffix in ("-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    else:
        # SQLite's magic and a plausible header, then pages of garbage (and no write-ahead log to fall back on)
        db.write_bytes(b"SQLite format 3\x00" + b"\x10\x00\x01\x01\x00\x40\x20\x20" + b"\xff" * (8192 - 24))
        for suffix in ("-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    assert corrupt(db)

    fleet.start_master()
    wait_for(lambda: "is corrupt" in (log := fleet.master.output()) and "moved to" in log,
             what="the corruption in the master's log")
    aside = list(db.parent.glob(f"{DB_NAME}.corrupt-*"))
    assert len(aside) == 1 and corrupt(aside[0])
    with LocalClient(cfg=fleet.cfg) as c:
        assert c.cmd("*", "test.echo", ["after"], timeout=20) == {"m1": "after", "m2": "after"}
    r = fleet.run_cli("rx-run", "jobs.lookup_jid", before)
    assert r.returncode == 3 and "may be lost" in r.stderr, (r.returncode, r.stderr)
