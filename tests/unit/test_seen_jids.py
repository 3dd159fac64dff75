"""rx.minion.seen and the gate over it: a jid a minion ran is refused again after a restart (a new
process on the same file), the file is pruned to the window and compacted, and a torn or foreign
line is skipped, never fatal.  Real files under tmp_path."""

from __future__ import annotations

import time

import pytest

from rx.minion import seen as seen_mod
from rx.minion.gate import JOB_WINDOW, Gate
from rx.minion.seen import SeenJids
from rx.targeting import MinionFacts
from rx.transport.handshake import Session
from rx.transport.messages import Job

JID = "20240102030405060708"
JID2 = "20240102030405060709"


def _gate(path, master) -> Gate:
    gate = Gate(lambda: MinionFacts("web1", {}), path)
    gate.use(Session(master_pub=master.public, serial=1, publish_key=b"p" * 32, request_key=b"r" * 32,
                     master_offset=0.0))
    return gate


def _job(jid: str = JID, age: float = 0.0, tgt: str = "web1") -> Job:
    return Job(jid=jid, fun="test.ping", arg=[], kwarg={}, tgt=tgt, tgt_type="glob", ts=time.time() - age)


def test_a_jid_run_before_a_restart_is_refused_after_it(tmp_path, master):
    path = tmp_path / "cache" / "seen_jids"
    job = _job()
    assert _gate(path, master).admit(job) is True
    restarted = _gate(path, master)  # a new process: its own first session, the same file
    assert job.ts >= restarted.session_started - 5, "still fresh for the new process: only the file refuses it"
    assert restarted.admit(job) is False
    assert restarted.admit(_job(JID2)) is True


def test_only_admitted_jobs_are_recorded(tmp_path, master):
    path = tmp_path / "seen_jids"
    gate = _gate(path, master)
    assert gate.admit(_job(tgt="db*")) is False  # not ours: nothing to remember
    assert gate.admit(_job(JID2, age=JOB_WINDOW + 5)) is False  # stale
    assert not path.exists() or path.read_text() == ""
    assert gate.admit(_job()) is True
    assert path.read_text().split()[0] == JID


def test_memory_only_gate_writes_nothing(tmp_path, master):
    gate = _gate(None, master)
    assert gate.admit(_job()) is True and gate.admit(_job()) is False
    assert list(tmp_path.iterdir()) == []


def test_entries_older_than_the_window_are_forgotten_when_a_session_starts(tmp_path, master):
    path = tmp_path / "seen_jids"
    now = time.time()
    path.write_text(f"{JID} {now - JOB_WINDOW - 60!r}\n{JID2} {now - 10!r}\n")
    gate = _gate(path, master)
    assert JID not in gate.seen and JID2 in gate.seen


@pytest.mark.parametrize("junk", [
    "garbage\n", "123 1.0\n", f"{JID}\n", f"{JID} nan\n", f"{JID} inf\n", f"{JID} 1.0 extra\n", "\xff\xfe\n",
    f"{JID2[:7]}", f"{JID2} 17",
], ids=repr)
def test_unreadable_and_torn_lines_are_skipped_and_appends_stay_readable(tmp_path, master, junk):
    path = tmp_path / "seen_jids"
    good = "20240102030405060700"
    path.write_bytes(f"{good} {time.time()!r}\n".encode() + junk.encode("utf-8", "surrogateescape"))
    gate = _gate(path, master)
    assert good in gate.seen
    assert gate.admit(_job()) is True
    again = SeenJids(path, JOB_WINDOW, 100)
    assert good in again and JID in again


def test_an_unreadable_file_is_not_fatal(tmp_path, master):
    path = tmp_path / "seen_jids"
    path.mkdir()  # a directory where the file should be: neither readable nor appendable
    gate = _gate(path, master)
    assert gate.admit(_job()) is True and gate.admit(_job()) is False  # memory still refuses the replay


def test_the_file_is_compacted_to_the_live_entries(tmp_path, master, monkeypatch):
    monkeypatch.setattr(seen_mod, "COMPACT_MIN_LINES", 10)
    path = tmp_path / "seen_jids"
    seen = SeenJids(path, window=100.0, most=1000)
    now = time.time()
    for i in range(40):
        seen.add(f"2024010203040506{i:04d}", now - 200 + i * 5, master_now=now)  # the first ones are stale
    lines = path.read_text().splitlines()
    assert len(seen) == 20 and len(lines) <= 2 * len(seen) and len(lines) < 40
    assert {line.split()[0] for line in lines} >= {f"2024010203040506{i:04d}" for i in range(21, 40)}
    assert len(SeenJids(path, 100.0, 1000)) >= len(seen)
