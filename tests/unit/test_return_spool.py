"""rx.minion.spool (the on-disk return spool: order, bounds, atomic files, damage, restarts) and
rx.minion.outbox (what a return becomes for each answer of the master), on real files and real
keys.  The master's side of the request port is a scripted RequestClient: the same sealing and
opening as rx-master, answers chosen by the test."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

import pytest

from rx.config import MinionConfig
from rx.minion.link import MasterLink, Status
from rx.minion.outbox import Outbox
from rx.minion.spool import Spool
from rx.transport.crypto import Identity
from rx.transport.errors import ErrorKind
from rx.transport.handshake import Session, request_key
from rx.transport.messages import JobReturn, parse_request
from rx.transport.replies import Ack, ErrorReply
from rx.transport.roles import RequestTimeout
from rx.transport.secure import open_request, seal_reply

MB = 1 << 20


def _ret(n: int, size: int = 10) -> dict:
    return JobReturn(jid=f"{20240102030405060000 + n}", fun="test.echo", fun_args=[], retcode=0, success=True,
                     ret="x" * size).to_wire()


def _files(directory) -> list[str]:
    return sorted(os.listdir(directory))


# ---------------------------------------------------------------- the spool

def test_returns_are_kept_oldest_first_across_a_reopen(tmp_path):
    spool = Spool(str(tmp_path / "s"), 100, MB)
    for n in range(3):
        spool.put(_ret(n))
    assert [e.jid for e in spool.entries()] == [_ret(n)["jid"] for n in range(3)]
    assert all(name.endswith(".ret") for name in _files(tmp_path / "s"))
    assert oct(os.stat(tmp_path / "s").st_mode & 0o777) == "0o700"

    again = Spool(str(tmp_path / "s"), 100, MB)
    assert [again.read(e) for e in again.entries()] == [_ret(n) for n in range(3)]
    first = again.entries()[0]
    again.remove(first)
    assert first not in again and len(again) == 2 and len(_files(tmp_path / "s")) == 2
    again.put(_ret(9))
    assert [e.jid for e in again.entries()][-1] == _ret(9)["jid"]  # numbered after what was loaded


@pytest.mark.parametrize("bound", [{"max_returns": 2, "max_bytes": MB}, {"max_returns": 100, "max_bytes": 2500}])
def test_past_the_bound_the_oldest_is_dropped_with_a_warning(tmp_path, caplog, bound):
    spool = Spool(str(tmp_path / "s"), bound["max_returns"], bound["max_bytes"])
    with caplog.at_level(logging.WARNING, "rx.minion"):
        for n in range(4):
            spool.put(_ret(n, size=1000))
    assert [e.jid for e in spool.entries()] == [_ret(2)["jid"], _ret(3)["jid"]]
    assert len(_files(tmp_path / "s")) == 2
    dropped = [r.getMessage() for r in caplog.records if "dropped the oldest" in r.getMessage()]
    assert len(dropped) == 2 and _ret(0)["jid"] in dropped[0] and _ret(1)["jid"] in dropped[1]


def test_a_return_larger_than_the_whole_bound_is_refused_and_the_others_kept(tmp_path, caplog):
    spool = Spool(str(tmp_path / "s"), 100, 2000)
    spool.put(_ret(0))
    assert spool.put(_ret(1, size=5000)) is None
    assert [e.jid for e in spool.entries()] == [_ret(0)["jid"]]
    assert "larger than the whole return spool" in caplog.text


def test_a_smaller_bound_at_start_drops_the_oldest(tmp_path):
    spool = Spool(str(tmp_path / "s"), 100, MB)
    for n in range(5):
        spool.put(_ret(n))
    again = Spool(str(tmp_path / "s"), 2, MB)
    assert [e.jid for e in again.entries()] == [_ret(3)["jid"], _ret(4)["jid"]]
    assert len(_files(tmp_path / "s")) == 2


@pytest.mark.parametrize("damage", ["truncated", "flipped", "empty", "garbage", "not_a_return"])
def test_a_damaged_entry_is_skipped_logged_and_removed(tmp_path, caplog, damage):
    spool = Spool(str(tmp_path / "s"), 100, MB)
    for n in range(3):
        spool.put(_ret(n))
    victim = tmp_path / "s" / _files(tmp_path / "s")[1]
    blob = victim.read_bytes()
    if damage == "truncated":
        victim.write_bytes(blob[:len(blob) // 2])
    elif damage == "flipped":
        victim.write_bytes(blob[:-1] + bytes([blob[-1] ^ 1]))
    elif damage == "empty":
        victim.write_bytes(b"")
    elif damage == "garbage":
        victim.write_bytes(os.urandom(200))
    else:  # a valid file whose content is not a return: its header and CRC check, the shape does not
        import struct
        import zlib
        from rx.minion.spool import MAGIC
        from rx.transport.codec import encode
        body = encode({"jid": "nope"})
        victim.write_bytes(struct.pack(">8sI", MAGIC, zlib.crc32(body)) + body)
    again = Spool(str(tmp_path / "s"), 100, MB)
    read = [again.read(e) for e in again.entries()]
    assert read == [_ret(0), None, _ret(2)]
    assert len(again) == 2 and victim.name not in _files(tmp_path / "s")
    assert "damaged" in caplog.text and victim.name in caplog.text


def test_a_write_cut_short_and_foreign_files_do_not_stop_the_start(tmp_path, caplog):
    d = tmp_path / "s"
    spool = Spool(str(d), 100, MB)
    spool.put(_ret(0))
    (d / "0000000000000002-20240102030405060001.ret.tmp").write_bytes(b"half")
    (d / "notes.txt").write_text("hello")
    again = Spool(str(d), 100, MB)
    assert [e.jid for e in again.entries()] == [_ret(0)["jid"]]
    assert not any(name.endswith(".tmp") for name in _files(d))
    assert "notes.txt" in caplog.text


def test_an_unusable_directory_keeps_returns_in_memory(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("")
    spool = Spool(str(blocker / "spool"), 100, MB)
    assert spool.directory is None and "in memory only" in caplog.text
    spool.put(_ret(0))
    assert spool.read(spool.entries()[0]) == _ret(0)


def test_a_failed_write_keeps_that_return_in_memory(tmp_path, caplog):
    d = tmp_path / "s"
    spool = Spool(str(d), 100, MB)
    spool.put(_ret(0))
    os.rename(d, tmp_path / "gone")  # writes now fail (ENOENT), as on a disk that went away
    spool.put(_ret(1))
    assert "kept in memory only" in caplog.text
    assert spool.read(spool.entries()[1]) == _ret(1)


def test_memory_only_spool_writes_nothing(tmp_path):
    spool = Spool(None, 2, MB)
    for n in range(3):
        spool.put(_ret(n))
    assert [spool.read(e) for e in spool.entries()] == [_ret(1), _ret(2)]
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------- the outbox

SECRET = b"s" * 32
SERIAL = 7


class ScriptedMaster:
    """The request port of a master that answers each `_return` with the next scripted answer: "ack",
    "duplicate", "unavailable" (clear), "internal" (sealed), "unknown_job" (final), or "timeout"."""

    url = "tcp://scripted"

    def __init__(self, answers: list[str]) -> None:
        self.answers = list(answers)
        self.taken: list[str] = []

    async def request(self, obj: Any, timeout: float, retries: int = 0) -> Any:
        req = parse_request(obj)
        key, cmd = open_request(SECRET, SERIAL, req, now=time.time(), window=300)
        answer = self.answers.pop(0) if self.answers else "ack"
        if answer == "timeout":
            raise RequestTimeout("no answer (scripted)")
        if answer == "unavailable":
            return ErrorReply(ErrorKind.UNAVAILABLE, "the master cannot reach its store right now").to_wire()
        if answer == "ack":
            self.taken.append(cmd.load["jid"])
            return seal_reply(key, req, SERIAL, Ack().to_wire())
        kind = {"duplicate": ErrorKind.DUPLICATE, "internal": ErrorKind.INTERNAL,
                "unknown_job": ErrorKind.UNKNOWN_JOB}[answer]
        return seal_reply(key, req, SERIAL, ErrorReply(kind, answer).to_wire())

    def reset(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


class _Transport:
    def __init__(self, master: ScriptedMaster) -> None:
        self.master = master

    def request_client(self, url: str, untrusted: bool = False) -> ScriptedMaster:
        return self.master


def _outbox(answers: list[str], spool: Spool) -> tuple[Outbox, ScriptedMaster]:
    master = ScriptedMaster(answers)
    cfg = MinionConfig(id="web1", timeout=0.01, return_retry_timer_max=0.01)
    link = MasterLink(cfg, Identity.generate(), _Transport(master))
    link.session = Session(master_pub=b"m" * 32, serial=SERIAL, publish_key=b"p" * 32,
                           request_key=request_key(SECRET, SERIAL, "web1"), master_offset=0.0)
    return Outbox(link, spool), master


@pytest.mark.parametrize("answer, spooled", [("ack", False), ("duplicate", False), ("unknown_job", False),
                                             ("unavailable", True), ("internal", True), ("timeout", True)])
async def test_a_return_is_spooled_only_when_the_master_cannot_take_it_now(tmp_path, answer, spooled):
    spool = Spool(str(tmp_path / "s"), 100, MB)
    outbox, _master = _outbox([answer], spool)
    await outbox.deliver(_ret(0))
    assert [e.jid for e in spool.entries()] == ([_ret(0)["jid"]] if spooled else [])


@pytest.mark.parametrize("answer", ["unavailable", "internal", "timeout"])
async def test_the_spool_is_sent_oldest_first_until_the_master_takes_it(tmp_path, answer):
    spool = Spool(str(tmp_path / "s"), 100, MB)
    outbox, master = _outbox([answer] * 9, spool)  # the first try of each, then 7 failed rounds
    await outbox.deliver(_ret(0))
    await outbox.deliver(_ret(1))
    sender = asyncio.get_running_loop().create_task(outbox.run())
    try:
        for _ in range(2000):
            if not len(spool):
                break
            await asyncio.sleep(0.005)
    finally:
        sender.cancel()
    assert master.taken == [_ret(0)["jid"], _ret(1)["jid"]] and os.listdir(tmp_path / "s") == []


async def test_a_return_on_its_way_when_the_minion_stops_is_spooled(tmp_path):
    spool = Spool(str(tmp_path / "s"), 100, MB)
    outbox, master = _outbox([], spool)
    never = asyncio.Event()

    async def hang(obj: Any, timeout: float, retries: int = 0) -> Any:
        await never.wait()
    master.request = hang  # type: ignore[method-assign]
    task = asyncio.get_running_loop().create_task(outbox.deliver(_ret(0)))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [e.jid for e in Spool(str(tmp_path / "s"), 100, MB).entries()] == [_ret(0)["jid"]]


async def test_exchange_says_what_became_of_a_request(tmp_path):
    outbox, _master = _outbox(["unavailable", "unavailable", "ack", "unknown_job"], Spool(None, 10, MB))
    link = outbox.link
    first = await link.exchange("_return", _ret(0), attempts=1)
    assert first.status is Status.UNDELIVERED and "could not take it" in first.reason
    assert (await link.exchange("_return", _ret(0), attempts=2)).status is Status.DELIVERED
    assert (await link.exchange("_return", _ret(1))).status is Status.REFUSED
