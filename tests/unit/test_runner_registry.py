"""The runner registry (rx.client.runnerload): allow-lists, custom modules from extmods and entry points,
names with close matches, arguments checked against the signature; and the runners' own input checks
and output formats, without a master."""

from __future__ import annotations

import asyncio
import importlib
import textwrap

import pytest

from rx.client.output import render_value
from rx.client.results import BadRequest
from rx.client.runner import salt_style_args
from rx.client.runnerload import RunnerRegistry, UnknownRunner, check_args
from rx.runners import RUNNERS, RunnerContext
from rx.runners import event as event_runner
from rx.transport.callmsgs import CallReply, CallReturn
from rx.transport.errors import ProtocolError


@pytest.fixture
def registry():
    return RunnerRegistry(None, entry_points=False)


def test_every_builtin_runner_is_documented_and_exported(registry):
    funs = registry.functions()
    assert {"manage.up", "manage.down", "manage.status", "manage.present", "manage.not_present", "manage.joined",
            "manage.alived", "manage.versions", "event.send", "event.watch", "state.event", "jobs.lookup_jid",
            "jobs.list_jobs"} <= set(funs)
    assert {f.split(".")[0] for f in funs} == set(RUNNERS.values())
    for fun, doc in registry.doc("*").items():
        assert "CLI example: rx-run " + fun.split(".")[0] in doc, fun


@pytest.mark.parametrize("name, message", [
    ("manage.upp", "did you mean manage.up?"),
    ("evnt.send", "did you mean event.send?"),
    ("nosuch.fun", "see rx-run -d for the list"),
    ("manage.__init__", "no runner 'manage.__init__'"),
    ("manage._flag", "no runner 'manage._flag'"),     # module-level helpers are not exported
    ("manage.glob", "no runner 'manage.glob'"),       # nor what a module imported
    ("os.system", "no runner 'os.system'"),
    ("../x.y", "not a runner name"),
    (["manage.up"], "not a runner name"),
])
def test_unknown_names(registry, name, message):
    with pytest.raises(UnknownRunner, match=message.replace("?", r"\?").replace("(", r"\(")):
        registry.resolve(name)


@pytest.mark.parametrize("fun, args, kwargs, message", [
    ("manage.up", [], {"bogus": 1}, "unexpected keyword argument 'bogus'"),
    ("manage.up", [1, 2, 3, 4, 5], {}, "too many positional arguments"),
    ("jobs.lookup_jid", [], {}, "missing a required argument: 'jid'"),
    ("event.send", ["t"], {"tag": "u"}, "multiple values for argument 'tag'"),
])
def test_wrong_arguments_show_the_signature(registry, fun, args, kwargs, message):
    with pytest.raises(BadRequest, match=message) as err:
        check_args(fun, registry.resolve(fun), args, kwargs)
    assert "usage: " + fun + "(" in str(err.value) and "ctx" not in str(err.value)


def test_doc_patterns(registry):
    assert set(registry.doc("manage")) == {f for f in registry.functions() if f.startswith("manage.")}
    assert set(registry.doc("*.event")) == {"state.event"}
    assert registry.doc("manage.up")["manage.up"].startswith("manage.up(tgt='*', tgt_type='glob', timeout=None")
    assert registry.doc("nothing") == {}


def _ext(tmp_path, files: dict[str, str], mode: int = 0o644):
    folder = tmp_path / "cache" / "extmods" / "runners"
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text))
        (folder / name).chmod(mode)
    return folder


def test_extmods_follow_the_same_rules(tmp_path):
    _ext(tmp_path, {"good.py": "__all__ = ['f']\ndef f(x=1):\n    return x\ndef g():\n    return 2\n",
                    "noall.py": "def f():\n    return 1\n",
                    "broken.py": "def (:\n",
                    "manage.py": "__all__ = ['up']\ndef up():\n    return 'impostor'\n",
                    "bad-name.py": "__all__ = []\n"})
    reg = RunnerRegistry(str(tmp_path / "cache"), entry_points=False)
    assert reg.resolve("good.f")(5) == 5
    assert "good.f" in reg.functions() and "good.g" not in reg.functions()
    with pytest.raises(UnknownRunner, match="no __all__"):
        reg.resolve("noall.f")
    with pytest.raises(UnknownRunner, match="cannot import: SyntaxError"):
        reg.resolve("broken.x")
    assert reg.resolve("manage.up").__module__ == "rx.runners.manage"
    assert "bad-name" in reg.unavailable()


@pytest.mark.parametrize("folder_mode, file_mode, message", [
    (0o757, 0o644, "custom runners in"),            # a folder others can write: nothing in it loads
    (0o755, 0o646, "writable by group or others"),  # a file others can write
])
def test_extmods_others_can_write_are_not_loaded(tmp_path, caplog, folder_mode, file_mode, message):
    folder = _ext(tmp_path, {"good.py": "__all__ = ['f']\ndef f():\n    return 1\n"}, file_mode)
    folder.chmod(folder_mode)
    reg = RunnerRegistry(str(tmp_path / "cache"), entry_points=False)
    with pytest.raises(UnknownRunner):
        reg.resolve("good.f")
    assert message in caplog.text + str(reg.unavailable())


def test_entry_points_add_runner_modules(tmp_path, monkeypatch):
    dist = tmp_path / "site" / "extra_runners-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: extra-runners\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[rx.runners]\nextra = extra_runners_mod\njobs = extra_runners_mod\n")
    (tmp_path / "site" / "extra_runners_mod.py").write_text("__all__ = ['hi']\ndef hi():\n    return 'hi'\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    importlib.invalidate_caches()
    reg = RunnerRegistry(None)
    assert reg.resolve("extra.hi")() == "hi"
    assert reg.resolve("jobs.lookup_jid").__module__ == "rx.runners.jobs"  # a built-in is never replaced


@pytest.mark.parametrize("arg, kwarg, args, kwargs", [
    (["20260101000000000000"], None, [20260101000000000000], {}),
    (["removekeys=True", "tgt=web*"], None, [], {"removekeys": True, "tgt": "web*"}),
    (["myapp/x", {"a": 1}], None, ["myapp/x", {"a": 1}], {}),   # not all strings: taken as they are
    (["timeout=2"], {"timeout": 5}, [], {"timeout": 5}),         # kwarg wins
    (None, None, [], {}),
])
def test_salt_style_arguments(arg, kwarg, args, kwargs):
    assert salt_style_args(arg, kwarg) == (args, kwargs)


@pytest.mark.parametrize("tag, data, message", [
    ("rx/job/1/ret/m1", None, "rx's own events"),
    ("", None, "1-512 printable"),
    ("t" * 513, None, "1-512 printable"),
    ("a\tb", None, "no tabs or newlines"),
    ("a\nb", None, "no tabs or newlines"),
    (5, None, "must be text"),
    ("myapp/x", [1], "must be a mapping"),
    ("myapp/x", "text", "must be a mapping"),
    ("myapp/x", {"b": "x" * (1024 * 1024)}, "over the 1048576-byte limit"),
])
def test_event_send_checks_before_firing(tag, data, message):
    ctx = RunnerContext(cfg=None)  # a check that passed would need the config: it fails instead
    with pytest.raises(BadRequest, match=message):
        asyncio.run(event_runner.send(ctx, tag, data))


@pytest.mark.parametrize("tagmatch, prefix", [("*", ""), ("rx/job/*/ret/m1", "rx/job/"), ("myapp/x", "myapp/x"),
                                              ("a?b", "a"), ("[ab]/x", "")])
def test_watch_subscribes_to_the_literal_start_of_the_glob(tagmatch, prefix):
    assert event_runner._prefix(tagmatch) == prefix


def test_event_lines():
    assert event_runner.format_event("myapp/x", {"b": 1, "a": [1]}) == 'myapp/x\t{"a": [1], "b": 1}'
    assert event_runner.format_event("t\x1b[2J", {}) == "t\\x1b[2J\t{}"
    assert event_runner.format_event("t", {"a": 1}, pretty=True) == 't\t{\n    "a": 1\n}'


@pytest.mark.parametrize("out, value, text", [
    ("nested", ["m1", "m2"], "- m1\n- m2"),
    ("nested", [], "[]"),
    ("nested", True, "True"),
    ("json", ["m1"], '[\n    "m1"\n]'),
    ("yaml", ["m1"], "- m1"),
    ("txt", ["m1", "m2"], "m1\nm2"),
    ("jsonl", ["m1", {"a": 1}], '"m1"\n{"a": 1}'),
    ("raw", ["m1"], "['m1']"),
    ("txt", "a\x1b[2Jb", "a\\x1b[2Jb"),
])
def test_runner_values_in_every_outputter(out, value, text):
    assert render_value(out, value) == text


def test_call_return_wire():
    call = CallReturn(fun="test.echo", arg=["hi"], kwarg={"k": 1}, retcode=0, success=True, ret="hi")
    assert CallReturn.from_wire(call.to_wire()) == call
    for bad in ({**call.to_wire(), "fun": "a.b.c"}, {**call.to_wire(), "kwarg": {1: 2}},
                {k: v for k, v in call.to_wire().items() if k != "return"}, {**call.to_wire(), "retcode": 2**40},
                {**call.to_wire(), "arg": "x"}, "not a map"):
        with pytest.raises(ProtocolError):
            CallReturn.from_wire(bad)
    assert CallReply.from_wire(CallReply("20260101000000000000").to_wire()).jid == "20260101000000000000"
    with pytest.raises(ProtocolError):
        CallReply.from_wire({"ok": True, "jid": "../x"})


def test_runners_in_the_master_file_roots_load_where_they_are(tmp_path):
    """`_runners/*.py` in the base environment's file roots (read through the master's file server, first
    root wins), under the same rules as extmods; an extmods module of the same name comes first."""
    from rx.config import load_master_config
    from rx.master.services.files import runner_files
    first, second = tmp_path / "srv1", tmp_path / "srv2"
    for root, text in ((first, "'first'"), (second, "'second'")):
        (root / "_runners").mkdir(parents=True)
        (root / "_runners" / "site.py").write_text(f"__all__ = ['where']\ndef where():\n    return {text}\n")
    (second / "_runners" / "other.py").write_text("__all__ = ['f']\ndef f():\n    return 'other'\n")
    cfg = load_master_config(str(tmp_path), {"root_dir": str(tmp_path), "file_roots": {"base": [str(first),
                                                                                                  str(second)]}})
    reg = RunnerRegistry(cfg.cachedir, entry_points=False, file_runners=lambda: runner_files(cfg))
    assert reg.resolve("site.where")() == "first" and reg.resolve("other.f")() == "other"
    (second / "_runners").chmod(0o777)
    reg = RunnerRegistry(cfg.cachedir, entry_points=False, file_runners=lambda: runner_files(cfg))
    with pytest.raises(UnknownRunner):
        reg.resolve("other.f")
    assert reg.resolve("site.where")() == "first"
