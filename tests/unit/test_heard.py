"""master/heard.py: the table of when the master last heard from each minion is one for all workers.

Two forked processes share a real memory-mapped file, as the MWorkers do: what one records, the
other reads; an id that shares a slot with another reads as not heard, never as the other's age."""

from __future__ import annotations

import os
import time

from rx.master.heard import ENTRY, LocalPresence, SharedPresence


def test_what_one_worker_hears_another_reads(tmp_path):
    path = str(tmp_path / "presence.map")
    reader = SharedPresence(path)
    pid = os.fork()
    if pid == 0:  # the other worker: records two minions, then exits
        writer = SharedPresence(path)
        writer.heard("web1", 100.0)
        writer.heard("db1", 90.0)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert status == 0
    assert reader.ages(["web1", "db1", "never"], 101.5) == {"web1": 1.5, "db1": 11.5}
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"


def test_the_latest_time_wins_and_future_or_empty_slots_read_as_not_heard(tmp_path):
    table = SharedPresence(str(tmp_path / "p"))
    table.heard("m", 10.0)
    table.heard("m", 20.0)
    assert table.ages(["m"], 25.0) == {"m": 5.0}
    assert table.ages(["m"], 15.0) == {}  # a time after `now` is not an age
    assert table.ages(["other"], 25.0) == {}


def test_two_ids_in_one_slot_never_borrow_each_others_age(tmp_path):
    table = SharedPresence(str(tmp_path / "p"), slots=1)
    table.heard("a", 10.0)
    table.heard("b", 12.0)
    assert table.ages(["a", "b"], 13.0) == {"b": 1.0}


def test_a_table_of_another_size_is_resized_not_misread(tmp_path):
    path = tmp_path / "p"
    path.write_bytes(b"\xff" * 100)
    table = SharedPresence(str(path), slots=4)
    assert path.stat().st_size == 4 * ENTRY.size
    assert table.ages(["x"], time.monotonic()) == {}


def test_local_presence_is_this_process_only():
    local = LocalPresence()
    local.heard("a", 1.0)
    assert local.ages(["a", "b"], 3.0) == {"a": 2.0}
