"""rx.minion.registry (the allow-list, built-ins) and rx.minion.executor.call_one / execute, in-process,
with an explicit ExecContext."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from rx.minion.builtins import BUILTINS
from rx.minion.calls import EX_GENERIC, objects_of, wire_safe
from rx.minion.executor import call_one, execute
from rx.minion.registry import BUILTIN_NAMES, Registry, UnknownFunction
from rx.modules import MODULES, ExecContext, takes_context
from rx.modules import test as test_module
from rx.transport.codec import MAX_DEPTH, MAX_OBJECTS, decode, encode
from rx.transport.messages import Job

JID = "20240102030405060708"


@pytest.fixture
def registry() -> Registry:
    return Registry()


@pytest.fixture
def ctx(registry) -> ExecContext:
    return ExecContext(minion_id="web1", grains={"os": "Linux", "cpu": {"count": 4}}, registry=registry)


def _job(fun, arg=None, kwarg=None) -> Job:
    return Job(jid=JID, fun=fun, arg=arg if arg is not None else [], kwarg=kwarg or {}, tgt="*", tgt_type="glob",
               ts=0.0)


# ---------------------------------------------------------------- registry

def test_resolve_allowed_function(registry):
    assert registry.resolve("test.ping") is test_module.ping
    assert registry.resolve("test.ping")() is True


@pytest.mark.parametrize("fun", [
    "os.system", "subprocess.run", "builtins.eval", "rx.config", "test.time", "test.context", "test.Result",
    "test.ExecContext", "test.CommandError", "test.__class__", "test.__dict__", "test._private", "cmd.subprocess",
    "cmd._run", "sys.fnmatch", "sys._index", "test", "test.ping.x", "", ".ping", "test.", "test.ping()", "test.ping\n",
    "../test.ping", "test/ping.x", "jobs.running", "grains.refresh", "saltutil.running", "rxutil.kill_job",
    "test.__virtual__", "test.__all__", "test.rx", "test.hashlib", "sys.inspect", "saltutil.BUILTINS", None, 5,
    ["test.ping"],
], ids=repr)
def test_resolve_refuses_anything_not_allow_listed(registry, fun):
    with pytest.raises(UnknownFunction):
        registry.resolve(fun)


def test_every_module_function_is_in_its_all_and_callable(registry):
    funs = registry.functions()
    assert funs == sorted(funs)
    assert {"test.ping", "test.echo", "cmd.run", "grains.items", "sys.list_functions"} <= set(funs)
    assert {"jobs.running", "jobs.find", "jobs.kill", "grains.refresh", "rxutil.running", "rxutil.find_job",
            "rxutil.kill_job", "sys.reload_modules"} <= BUILTIN_NAMES <= set(funs)
    assert {"saltutil.running", "saltutil.find_job", "saltutil.kill_job"} <= set(funs)  # Salt's name: an alias
    for fun in funs:
        if fun.split(".")[0] != "saltutil" and fun not in BUILTIN_NAMES:  # those run in the minion process
            assert callable(registry.resolve(fun))
    assert "test.time" not in funs and "cmd.subprocess" not in funs
    assert set(registry.modules()) | set(registry.unavailable()) == set(MODULES.values()) | {"jobs", "rxutil", "saltutil"}


def test_modules_are_loaded_once(registry):
    assert registry.module("test").module is Registry().module("test").module
    with pytest.raises(UnknownFunction):
        registry.module("os")


def test_docs_of_module_functions_and_builtins(registry):
    assert registry.doc("test.ping") == inspect.cleandoc(test_module.ping.__doc__)
    for name, func in BUILTINS.items():
        assert registry.doc(name) == inspect.cleandoc(func.__doc__) and "CLI example" in func.__doc__
    assert registry.doc("saltutil.running") == "(alias of rxutil.running)\n" + registry.doc("rxutil.running")
    with pytest.raises(UnknownFunction):
        registry.doc("test.nothing")


async def test_builtins_are_bound_to_the_minion_process(registry):
    assert registry.builtin("jobs.running") is None  # no minion attached: not callable here

    class Host:
        class executor:
            running = {"j": type("J", (), {"info": lambda self: {"jid": "j"}})()}
    registry.attach_host(Host())
    assert await registry.builtin("jobs.running")() == [{"jid": "j"}]
    assert registry.builtin("saltutil.running") is not None  # the alias reaches rxutil's
    assert registry.builtin("test.ping") is None and registry.builtin(["jobs.running"]) is None
    assert Registry().builtin("jobs.running") is None  # per registry, not global


def test_context_parameter_is_recognised():
    assert takes_context(test_module.provider) and not takes_context(test_module.ping)
    assert not takes_context(lambda context: None) and not takes_context(len)


# ---------------------------------------------------------------- call_one

@pytest.mark.parametrize("fun, args, kwargs, value, rc", [
    ("test.ping", [], {}, True, 0),
    ("test.echo", ["hello"], {}, "hello", 0),
    ("test.echo", [], {"text": "kw"}, "kw", 0),
    ("test.retcode", [3], {}, True, 3),
    ("test.retcode", [0], {}, True, 0),
    ("test.retcode", [], {}, True, 42),
    ("test.sleep", [0], {}, True, 0),
    ("grains.get", ["os"], {}, "Linux", 0),
    ("grains.get", ["cpu:count"], {}, 4, 0),
    ("grains.item", ["os", "nope"], {}, {"os": "Linux", "nope": ""}, 0),  # Salt: a missing grain gives default=""
    ("sys.list_functions", ["test.pi*"], {}, ["test.ping"], 0),
    ("sys.list_modules", ["te*"], {}, ["test"], 0),
])
def test_call_one_values_and_retcodes(registry, ctx, fun, args, kwargs, value, rc):
    assert call_one(registry, fun, args, kwargs, ctx) == (value, rc)


@pytest.mark.parametrize("fun, message", [
    ("os.system", "'os.system' is not available. There is no module 'os'."),
    ("test.pnig", "'test.pnig' is not available. Did you mean: test.ping?"),
    ("tset.echo", "'tset.echo' is not available. There is no module 'tset'. Did you mean: test.echo?"),
    ("saltutil.runing", "'saltutil.runing' is not available. Did you mean: saltutil.running, saltutil.is_running?"),
    ("test.nothing_like_it", "'test.nothing_like_it' is not available."),
    ("jobs.running", "'jobs.running' is not available. It runs in the minion daemon itself"),
])
def test_unknown_function_is_salts_message_and_retcode(registry, ctx, fun, message):
    value, rc = call_one(registry, fun, ["id"], {}, ctx)
    assert rc == EX_GENERIC == 1  # Salt's retcode for it
    assert value.startswith(message), value


@pytest.mark.parametrize("fun, args, kwargs, why, usage", [
    ("test.ping", ["unexpected"], {}, "too many positional arguments", "test.ping() -> bool"),
    ("test.echo", [], {}, "missing a required argument: 'text'", "test.echo(text: str) -> str"),
    ("test.echo", [], {"nope": 1}, "missing a required argument: 'text'", "test.echo(text: str) -> str"),
    ("test.echo", ["a"], {"nope": 1}, "got an unexpected keyword argument 'nope'", "test.echo(text: str) -> str"),
    ("test.echo", ["a"], {"text": "b"}, "multiple values for argument 'text'", "test.echo(text: str) -> str"),
    ("test.provider", [], {}, "missing a required argument: 'module'",  # takes the context: ctx not shown
     "test.provider(module: str) -> str"),
    ("test.providers", [], {"ctx": "forged"}, "'ctx' is given by the minion, not by the caller",
     "test.providers() -> dict"),
])
def test_wrong_arguments_get_a_message_built_from_the_signature(registry, ctx, fun, args, kwargs, why, usage):
    value, rc = call_one(registry, fun, args, kwargs, ctx)
    assert rc == 1 and "Traceback" not in value
    lines = value.splitlines()
    assert lines[0] == f"Passed invalid arguments to {fun}: {why}"  # Salt's first words
    assert lines[1] == f"Usage: {usage}"
    assert lines[2].startswith(f"CLI example: rx '*' {fun}")


def test_command_error_is_its_message(registry, ctx):
    value, rc = call_one(registry, "test.sleep", ["soon"], {}, ctx)
    assert rc == 1 and value.startswith("ERROR: ") and "soon" in value and "Traceback" not in value
    value, rc = call_one(registry, "sys.list_modules", [], {}, dataclasses.replace(ctx, registry=None))
    assert rc == 1 and value == "ERROR: no function registry in this context"


def test_exception_is_a_traceback(registry, ctx):
    value, rc = call_one(registry, "test.exception", ["kaboom"], {}, ctx)
    assert rc == 1 and value.startswith("The minion function caused an exception: Traceback")
    assert "RuntimeError: kaboom" in value


def test_functions_see_the_minion_context(registry, ctx):
    value, rc = call_one(registry, "test.arg", [1, "two"], {"k": "v"}, ctx)
    assert (value, rc) == ({"args": [1, "two"], "kwargs": {"k": "v"}}, 0)
    assert call_one(registry, "grains.items", [], {}, ctx) == ({"os": "Linux", "cpu": {"count": 4}}, 0)


# ---------------------------------------------------------------- execute

def test_execute_single_function(registry, ctx):
    assert execute(registry, _job("test.echo", ["hi"]), ctx) == {"return": "hi", "retcode": 0, "success": True}
    assert execute(registry, _job("test.echo", [], {"text": "kw"}), ctx)["return"] == "kw"
    assert execute(registry, _job("test.retcode", [2]), ctx) == {"return": True, "retcode": 2, "success": False}
    assert execute(registry, _job("grains.get", ["os"]), ctx)["return"] == "Linux"


def test_execute_multi_function_keeps_every_result_of_a_repeated_function(registry, ctx):
    out = execute(registry, _job(["test.ping", "test.retcode", "test.retcode", "test.echo"], [[], [2], [5], ["x"]]),
                  ctx)
    assert out["return"] == [True, True, True, "x"]  # a name used twice: a list in call order, both results kept
    assert out["retcode"] == 2 and out["success"] is False  # the first failure


def test_execute_multi_function_all_ok(registry, ctx):
    out = execute(registry, _job(["test.ping", "test.echo"], [[], ["x"]]), ctx)
    assert out == {"return": {"test.ping": True, "test.echo": "x"}, "retcode": 0, "success": True}


def test_execute_multi_function_reports_the_first_failure(registry, ctx):
    out = execute(registry, _job(["test.retcode", "nope.nothing", "test.ping"], [[3], [], []]), ctx)
    assert out["return"]["test.retcode"] is True and out["return"]["test.ping"] is True
    assert "not available" in out["return"]["nope.nothing"]
    assert out["retcode"] == 3 and out["success"] is False


def test_execute_unknown_function(registry, ctx):
    out = execute(registry, _job("nope.nothing"), ctx)
    assert out["retcode"] == 1 and out["success"] is False


@pytest.mark.parametrize("value, plain", [
    ({1: "int key", True: "bool key"}, {"1": "bool key"}),
    ({(1, 2): "tuple key", None: "none key", 2.5: "float key"}, {"(1, 2)": "tuple key", "None": "none key",
                                                                  "2.5": "float key"}),
    ({"nested": {3: {4: [5]}}}, {"nested": {"3": {"4": [5]}}}),
    ({"set": {1}, "tuple": (1, 2), "frozen": frozenset([3])}, {"set": [1], "tuple": [1, 2], "frozen": [3]}),
    ({"obj": Ellipsis}, {"obj": "Ellipsis"}),
    ({b"raw": b"bytes"}, {b"raw": b"bytes"}),
], ids=["int-keys", "odd-keys", "nested-int-keys", "collections", "unknown-type", "bytes"])
def test_any_return_value_survives_the_wire(registry, ctx, value, plain):
    # what the job process returns must decode on the other side (codec.decode refuses non-str map keys)
    out = execute(registry, _job("test.echo", [value]), ctx)
    assert decode(encode(out))["return"] == plain


def _deep(levels: int) -> list:
    value: list = []
    for _ in range(levels - 1):
        value = [value]
    return value


@pytest.mark.parametrize("value, why", [
    ([[0] * 1000] * (MAX_OBJECTS // 1000), "objects"),
    (_deep(MAX_DEPTH - 1), "nesting deeper"),  # its `_return` plaintext would be MAX_DEPTH + 1 deep
    (_deep(MAX_DEPTH - 2), None),
    ([[0] * 1000] * 100, None),
], ids=["over-object-cap", "too-deep", "deepest-allowed", "large"])
def test_a_return_the_master_would_refuse_becomes_an_error_return(value, why):
    out = decode(wire_safe({"return": value, "retcode": 0, "success": True}))
    if why is None:
        assert out["return"] == value
    else:
        assert out["success"] is False and why in out["return"]


def test_the_return_leaves_room_for_the_job_arguments():
    value = [[0] * 1000] * (MAX_OBJECTS // 1000 - 10)
    assert decode(wire_safe({"return": value}))["return"] == value
    job = _job("test.echo", [[0] * 20_000])
    assert "objects" in decode(wire_safe({"return": value}, objects_of(job)))["return"]
