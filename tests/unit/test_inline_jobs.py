"""Jobs the minion runs in its own process (rx.modules.INLINE): which ones, that they fork no job process,
and that their returns are the ones a forked job gives.  A real Minion, Registry and Executor; the
forks are counted with the interpreter's own audit events (`os.fork`)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from rx.config import MinionConfig
from rx.minion.core import Minion
from rx.minion.executor import Executor
from rx.minion.registry import Registry
from rx.modules import INLINE, MODULES
from rx.transport.crypto import Identity
from rx.transport.messages import Job, JobReturn

JID = "20240102030405060708"
_FORKS: list[int] = []
_COUNTING: list[bool] = []


def _audit(event: str, _args: tuple) -> None:
    if event == "os.fork" and _COUNTING:
        _FORKS.append(1)


sys.addaudithook(_audit)


class Returns:
    """Where the minion's outbox would send returns: kept here, in order."""

    def __init__(self) -> None:
        self.sent: list[JobReturn] = []

    async def deliver(self, wire: dict) -> None:
        self.sent.append(JobReturn.from_wire(wire))


def _minion(tmp_path: Path, module_dirs: tuple[str, ...] = ()) -> Minion:
    cfg = MinionConfig(id="web1", cachedir=str(tmp_path / "cache"), module_dirs=module_dirs)
    m = Minion(cfg, identity=Identity.generate(), grains={"os": "Linux", "roles": ["web", "db"]}, catch_up=False)
    m.outbox = Returns()  # type: ignore[assignment]
    return m


def _job(fun, arg=None, kwarg=None) -> Job:
    return Job(jid=JID, fun=fun, arg=arg if arg is not None else [], kwarg=kwarg or {}, tgt="*", tgt_type="glob",
               ts=0.0)


def _run(m: Minion, job: Job) -> tuple[JobReturn, int]:
    """The job handled as a published one is: (its return, the processes forked for it)."""
    _FORKS.clear()
    _COUNTING.append(True)
    try:
        asyncio.run(m.handle_job(job))
    finally:
        _COUNTING.clear()
    return m.outbox.sent.pop(), len(_FORKS)  # type: ignore[union-attr]


def test_every_inline_name_is_a_function_of_an_rx_module():
    reg = Registry()
    for fun in sorted(INLINE):
        assert fun.split(".")[0] in MODULES.values(), fun
        assert reg.inline(fun), fun


@pytest.mark.parametrize("fun", ["cmd.run", "test.sleep", "test.fib", "test.nope", "nope.ping", ["test.ping"],
                                 "rxutil.running", "saltutil.running", 7, ""])
def test_other_functions_and_multi_function_jobs_are_not_inline(fun):
    assert not Registry().inline(fun)


def test_asking_does_not_import_modules_that_have_no_inline_function():
    before = set(sys.modules)
    Registry().inline("cmd.run")
    assert not {"rx.modules.cmd", "rx.modules.cmdmod"} & (set(sys.modules) - before)


@pytest.mark.parametrize("fun,arg,kwarg", [
    ("test.ping", [], {}),
    ("test.echo", ["hello world"], {}),
    ("test.retcode", [3], {}),
    ("test.arg", [1, "two"], {"three": 3}),
    ("grains.get", ["roles:1"], {}),
    ("grains.item", ["os", "missing"], {"default": "-"}),
    ("pillar.get", ["x"], {}),
    ("test.echo", [], {}),
    ("test.ping", [], {"timeout": "soon"}),
])
def test_an_inline_job_forks_nothing_and_returns_what_a_forked_one_does(tmp_path, fun, arg, kwarg):
    m = _minion(tmp_path)
    inline, forks = _run(m, _job(fun, arg, kwarg))
    assert forks == 0
    forked = asyncio.run(Executor(m.registry, m._context()).run(_job(fun, arg, kwarg)))
    assert (inline.ret, inline.retcode, inline.success) == (forked["return"], forked["retcode"], forked["success"])


def test_an_exception_inline_is_a_traceback_return_and_the_minion_goes_on(tmp_path):
    m = _minion(tmp_path)
    ret, forks = _run(m, _job("test.exception", ["boom"]))
    assert forks == 0 and ret.retcode == 1 and not ret.success
    assert ret.ret.startswith("The minion function caused an exception") and "RuntimeError: boom" in ret.ret
    assert _run(m, _job("test.ping"))[0].ret is True


def test_a_multi_function_job_forks(tmp_path):
    ret, forks = _run(_minion(tmp_path), _job(["test.ping", "test.echo"], [[], ["x"]]))
    assert forks == 1 and ret.ret == {"test.ping": True, "test.echo": "x"}


def test_a_custom_module_of_the_same_name_runs_in_a_job_process(tmp_path):
    mods = tmp_path / "mods"
    mods.mkdir()
    (mods / "test.py").write_text("import os\n__all__ = ['ping']\n\ndef ping():\n    return os.getpid()\n")
    m = _minion(tmp_path, (str(mods),))
    assert not m.registry.inline("test.ping")
    ret, forks = _run(m, _job("test.ping"))
    assert forks == 1 and isinstance(ret.ret, int) and ret.ret != __import__("os").getpid()
