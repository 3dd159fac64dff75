"""rx.transport.jidclock: jids unique and increasing across processes, restarts and a clock stepped back,
and per master (`jid_node`), in Salt's 20-digit form."""

from __future__ import annotations

import multiprocessing

import pytest

from rx.transport.ids import JID_RE, new_jid
from rx.transport.jidclock import JidClock, slot_jid

NOW = 1_700_000_000.123456


@pytest.fixture
def clock_file(tmp_path):
    path = tmp_path / ".jid_clock"
    JidClock.create(path)
    return path


@pytest.mark.parametrize("slot, node, jid", [
    (0, 0, "19700101000000000000"),
    (17_000_000_001_234, 7, "20231114221320123407"),
    (41_024_447_999_999, 99, "20991231235959999999"),
])
def test_a_jid_is_the_utc_second_the_slot_and_the_node(slot, node, jid):
    assert slot_jid(slot, node) == jid and JID_RE.match(jid)


def test_a_jid_reads_as_the_time_it_was_allocated(clock_file):
    jid = JidClock(clock_file, node=3).next(NOW)
    assert jid[:18] == new_jid(NOW)[:18] and jid.endswith("03")


def test_jids_in_one_slot_are_distinct_and_increasing(clock_file):
    clock = JidClock(clock_file)
    jids = [clock.next(NOW) for _ in range(1000)]
    assert jids == sorted(jids) and len(set(jids)) == 1000


def test_a_restart_continues_after_the_last_jid(clock_file):
    before = [JidClock(clock_file).next(NOW) for _ in range(3)]  # three processes, one after the other
    assert before == sorted(set(before))
    assert JidClock(clock_file).next(NOW) > before[-1]


def test_a_clock_stepped_back_still_gives_increasing_jids(clock_file):
    clock = JidClock(clock_file)
    first = clock.next(NOW)
    after_step = [clock.next(NOW - 3600) for _ in range(5)]
    assert all(j > first for j in after_step) and after_step == sorted(set(after_step))
    assert JidClock(clock_file).next(NOW - 7200) > after_step[-1]  # also for another process
    assert clock.next(NOW + 10) == slot_jid(int((NOW + 10) * 10_000), 0)  # the clock caught up: its own time


def test_masters_with_different_nodes_never_share_a_jid(tmp_path):
    a, b = JidClock(None, node=1), JidClock(None, node=2)
    assert not {a.next(NOW) for _ in range(100)} & {b.next(NOW) for _ in range(100)}


def test_every_process_of_a_host_gets_its_own_jids(clock_file):
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()

    def allocate() -> None:
        clock = JidClock(clock_file)
        out.put([clock.next(NOW) for _ in range(300)])

    procs = [ctx.Process(target=allocate) for _ in range(4)]
    for p in procs:
        p.start()
    jids = [j for _ in procs for j in out.get(timeout=30)]
    for p in procs:
        p.join(30)
    assert len(set(jids)) == 1200


@pytest.mark.parametrize("content", [b"", b"garbage", b"\xff\xfe", b"-5"])
def test_a_torn_or_foreign_file_is_not_fatal(clock_file, content):
    clock_file.write_bytes(content)
    clock = JidClock(clock_file)
    assert clock.next(NOW) < clock.next(NOW)


def test_without_the_file_a_process_still_allocates_increasing_jids(tmp_path):
    clock = JidClock(tmp_path / "missing")
    jids = [clock.next(NOW) for _ in range(10)]
    assert jids == sorted(set(jids)) and not (tmp_path / "missing").exists()


def test_the_node_is_checked():
    with pytest.raises(ValueError):
        JidClock(None, node=100)
