"""The client's side of issue #9 without daemons: what each error answer of the master means to the
client and its exit code (table-driven; internal and unavailable get their own code, naming the log),
the exit-code table's one source (`rx --help` and the README agree with it), the `lookup` handler on
real stores (paging by size, the minions it heard from), and MasterWatch on real processes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rx.client.cli import build_parser
from rx.client.masterlink import MasterLink
from rx.client.masterwatch import MasterWatch
from rx.client.results import (EXIT_CODES, EXIT_MASTER_ERROR, BadRequest, MasterError, MasterUnreachable,
                               PermissionDenied)
from rx.config import load_master_config
from rx.master import publish
from rx.master.context import WorkerContext, WorkerSettings
from rx.master.publish import handle_lookup
from rx.master.store import JobRecord
from rx.transport.errors import ErrorKind, ReplyError
from rx.transport.ids import new_jid
from rx.transport.messages import Job, LookupRequest
from rx.transport.replies import LookupReply, parse_reply

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture
def link(tmp_path) -> MasterLink:
    return MasterLink(cfg=load_master_config(str(tmp_path), {"root_dir": str(tmp_path)}))


ANSWERS = [
    (ErrorKind.PERMISSION, PermissionDenied),
    (ErrorKind.BAD_REQUEST, BadRequest),
    (ErrorKind.BAD_TARGET, BadRequest),
    (ErrorKind.UNKNOWN_JOB, BadRequest),
    (ErrorKind.INTERNAL, MasterError),
    (ErrorKind.UNAVAILABLE, MasterError),
    (ErrorKind.RENDER, MasterError),  # a pillar that does not render: the master's files, said in its log
    (ErrorKind.AUTH, MasterUnreachable),
    (ErrorKind.REAUTH, MasterUnreachable),
    (ErrorKind.DUPLICATE, MasterUnreachable),
]
"""Each error kind the master answers with, and the client error it becomes."""


@pytest.mark.parametrize("kind, cls", ANSWERS, ids=lambda v: getattr(v, "value", getattr(v, "__name__", "")))
def test_each_error_answer_becomes_its_client_error(link, kind, cls):
    exc = link._error(ReplyError(kind, "the reason"))
    assert type(exc) is cls and "the reason" in str(exc)
    assert (cls is MasterError) == (exc.exit_code == EXIT_MASTER_ERROR)
    if cls is MasterError:
        assert link.cfg.log_file in str(exc) and kind.value in str(exc)


def test_every_error_kind_is_mapped_on_purpose():
    """A new ErrorKind must be added to the table above (else it silently means "master unreachable")."""
    assert {kind for kind, _ in ANSWERS} == set(ErrorKind)


def test_exit_codes_have_one_source_that_help_and_readme_follow():
    assert len(set(EXIT_CODES)) == len(EXIT_CODES) == 8
    epilog = build_parser().epilog or ""
    for code, meaning in EXIT_CODES.items():
        assert f"  {code:<5}{meaning}\n" in epilog
    section = README.read_text().split("### Exit codes of `rx`", 1)[1].split("\n## ", 1)[0]
    assert {int(c) for c in re.findall(r"^\| (\d+) \|", section, re.M)} == set(EXIT_CODES)
    assert EXIT_CODES[EXIT_MASTER_ERROR] and EXIT_MASTER_ERROR not in (0, 1, 2, 3, 4, 5, 130)


# ---------------------------------------------------------------- the lookup handler

class _Bus:
    async def fire(self, tag: str, data: dict) -> None:
        pass

    def close(self) -> None:
        pass


def _ctx(stores) -> WorkerContext:
    return WorkerContext(identity=None, stores=stores, root_key="root", events=_Bus(), publisher=_Bus(),  # type: ignore
                         settings=WorkerSettings(False, 300.0, 0, 4505, {}))


async def _job(stores, minions: list[str], returns: dict[str, object]) -> str:
    jid = new_jid()
    job = Job(jid=jid, fun="test.echo", arg=[], kwarg={}, tgt=minions, tgt_type="list", ts=time.time())
    await stores.jobs.create_job(JobRecord(job, minions, minions[-1:]))
    for mid, value in returns.items():
        data = {"id": mid, "jid": jid, "return": value, "retcode": 0, "success": True}
        await stores.jobs.store_return(jid, mid, data)
    return jid


async def _lookup(ctx: WorkerContext, jid: str, ids: list[str] | None, key: str = "root") -> LookupReply:
    return parse_reply(await handle_lookup(ctx, LookupRequest(key, jid, ids).to_wire()), LookupReply)


async def test_lookup_pages_by_size_and_says_whom_it_heard_from(stores, monkeypatch):
    ctx = _ctx(stores)
    jid = await _job(stores, ["a", "b", "c", "d"], {"a": "x" * 300, "b": "y" * 300, "c": "z" * 300})
    ctx.presence.heard("b", time.monotonic() - 2.0)
    monkeypatch.setattr(publish, "LOOKUP_REPLY_BYTES", 500)
    first = await _lookup(ctx, jid, ["a", "b", "c", "d"])
    assert first.minions == ["a", "b", "c", "d"] and first.no_grains == ["d"]
    assert list(first.returns) == ["a"] and first.more == ["b", "c"]  # d has no return: not "more"
    assert first.returns["a"]["return"] == "x" * 300
    assert set(first.heard) == {"b"} and 2.0 <= first.heard["b"] < 60
    rest = await _lookup(ctx, jid, first.more)
    assert list(rest.returns) == ["b"] and rest.more == ["c"]
    monkeypatch.setattr(publish, "LOOKUP_REPLY_BYTES", 1 << 20)
    everything = await _lookup(ctx, jid, None)
    assert sorted(everything.returns) == ["a", "b", "c"] and everything.more == [] and everything.heard == {}


async def test_lookup_needs_the_root_key_and_a_known_job(stores):
    ctx = _ctx(stores)
    jid = await _job(stores, ["a"], {"a": True})
    with pytest.raises(ReplyError) as info:
        await _lookup(ctx, jid, None, key="wrong")
    assert info.value.kind is ErrorKind.PERMISSION
    with pytest.raises(ReplyError) as info:
        await _lookup(ctx, new_jid(), None)
    assert info.value.kind is ErrorKind.UNKNOWN_JOB


# ---------------------------------------------------------------- MasterWatch

def test_master_watch_sees_a_child_die_and_the_master_stop(tmp_path):
    """This test process stands for the master's supervisor; a child it starts dies, then the pidfile
    names a process that is gone."""
    pidfile = tmp_path / "master.pid"
    assert not MasterWatch(str(pidfile)).visible  # no pidfile: the client falls back to the fixed timeout
    pidfile.write_text(f"{os.getpid()}\n")
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        watch = MasterWatch(str(pidfile))
        assert watch.visible and child.pid in watch.start[1]
        assert watch.lost() == "" and watch.gone() == ""
    finally:
        child.kill()
        child.wait()
    assert "died" in watch.lost() and watch.gone() == ""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    pidfile.write_text(f"{dead.pid}\n")
    assert watch.gone() == "the master stopped"
