"""Presence claims (rx.transport.presence), sans-IO: what a claim holds, who can make one, how the
publisher's table counts them; and the presence store's report."""

from __future__ import annotations

import os

import pytest

from rx.master.store.errors import StoreError
from rx.master.store.presence import FilePresenceStore, PresenceReport
from rx.transport.handshake import request_key
from rx.transport.presence import (CLAIM_BYTES, CLAIM_MARK, PresenceTable, claim, id_tag, is_claim,
                                   parse_claim)
from rx.transport.topics import is_topic

SECRET, OTHER = b"s" * 32, b"o" * 32


def made(minion_id: str = "web1", serial: int = 7, secret: bytes = SECRET) -> bytes:
    return claim(request_key(secret, serial, minion_id), minion_id, serial)


def test_a_claim_fits_the_publish_ports_message_limit_and_is_no_topic():
    longest = made("x" * 255)
    assert len(longest) == CLAIM_BYTES == 33 and len(b"\x01" + longest) <= 64
    assert is_claim(longest) and not is_topic(longest)


@pytest.mark.parametrize("minion_id, serial, secret, checked_as, ok", [
    ("web1", 7, SECRET, "web1", True),
    ("web1", 2**40, SECRET, "web1", True),      # any serial under the secret: presence outlives rotations
    ("web1", 7, OTHER, "web1", False),          # made under another session secret (a lost session file)
    ("web1", 7, SECRET, "web2", False),         # another minion's claim
    ("é" * 100, 1, SECRET, "é" * 100, True),    # long, non-ASCII ids
])
def test_who_can_make_a_claim(minion_id, serial, secret, checked_as, ok):
    parsed = parse_claim(made(minion_id, serial, secret))
    assert parsed is not None and parsed.serial == serial
    assert parsed.verify(SECRET, checked_as) is ok


@pytest.mark.parametrize("topic", [b"", CLAIM_MARK, b"*", b"@abc", made()[:-1], made() + b"x", b"?" + made()[1:]])
def test_what_is_not_a_claim(topic):
    assert parse_claim(topic) is None


def test_a_claim_with_a_changed_byte_does_not_verify():
    good = made()
    for i in range(1, len(good)):
        bad = good[:i] + bytes([good[i] ^ 1]) + good[i + 1:]
        parsed = parse_claim(bad)
        assert parsed is None or not parsed.verify(SECRET, "web1"), i


def test_the_table_counts_holders_and_reports_by_id():
    table, a, b = PresenceTable(), made("m1"), made("m1", serial=8)
    table.hold(a, "m1", 10.0, "10.0.0.1")
    table.hold(a, "m1", 11.0, "10.0.0.2")  # the same claim on a second connection
    table.hold(b, "m1", 5.0)
    table.hold(made("m2"), "m2", 12.0, "10.0.0.3")
    assert table.snapshot() == {"m1": {"since": 5.0, "addr": "10.0.0.2", "connections": 3},  # the latest address
                                "m2": {"since": 12.0, "addr": "10.0.0.3", "connections": 1}}
    assert table.release(a) and table.release(b) and table.release(a)
    assert not table.release(a), "released more often than held"
    assert set(table.snapshot()) == {"m2"}


def test_id_tags_differ():
    assert len({id_tag(f"m{n}") for n in range(10_000)}) == 10_000


async def test_the_presence_report_round_trips_and_knows_its_writer(tmp_path):
    store = FilePresenceStore(tmp_path / "presence")
    assert await store.read() is None
    await store.publish({"m1": {"since": 1.0, "addr": "127.0.0.1", "connections": 1}})
    report = await store.read()
    assert report.minions == {"m1": {"since": 1.0, "addr": "127.0.0.1", "connections": 1}}
    assert report.pid == os.getpid() and report.live
    assert oct((tmp_path / "presence").stat().st_mode & 0o777) == "0o600"
    assert not PresenceReport(pid=2**22 + 12345).live and not PresenceReport().live
    (tmp_path / "presence").write_bytes(b"\xc1 not msgpack")
    with pytest.raises(StoreError, match="corrupt"):
        await store.read()
