"""rx.minion.registry (the allow-list, built-ins) and rx.minion.executor.call_one / execute, in-process,
with an explicit ExecContext."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from rx.minion.executor import RETCODE_UNAVAILABLE, _objects, _wire_safe, call_one, execute
from rx.minion.registry import BUILTIN_NAMES, BUILTINS, Registry, UnknownFunction
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
    "../test.ping", "test/ping.x", "jobs.running", "grains.refresh", None, 5, ["test.ping"],
], ids=repr)
def test_resolve_refuses_anything_not_allow_listed(registry, fun):
    with pytest.raises(UnknownFunction):
        registry.resolve(fun)


def test_every_module_function_is_in_its_all_and_callable(registry):
    funs = registry.functions()
    assert funs == sorted(funs)
    assert {"test.ping", "test.echo", "cmd.run", "grains.items", "sys.list_functions"} <= set(funs)
    assert BUILTIN_NAMES == {"jobs.running", "jobs.find", "jobs.kill", "grains.refresh", "saltutil.refresh_pillar",
                             "rxutil.refresh_pillar"} <= set(funs)
    for fun in funs:
        if fun not in BUILTIN_NAMES:  # those run in the minion process itself
            assert callable(registry.resolve(fun))
    assert "test.time" not in funs and "cmd.subprocess" not in funs
    assert registry.modules() == sorted(set(MODULES.values()))


def test_modules_are_loaded_once(registry):
    assert registry.module("test") is Registry().module("test")
    with pytest.raises(UnknownFunction):
        registry.module("os")


def test_docs_of_module_functions_and_builtins(registry):
    assert registry.doc("test.ping") == inspect.cleandoc(test_module.ping.__doc__)
    for spec in BUILTINS:
        assert registry.doc(spec.name) == spec.doc and "CLI example" in spec.doc
    with pytest.raises(UnknownFunction):
        registry.doc("test.nothing")


async def test_builtins_are_attached_by_the_minion_process(registry):
    assert registry.builtin("jobs.running") is None  # not attached yet

    async def running() -> list:
        return ["job"]
    registry.attach("jobs.running", running)
    assert await registry.builtin("jobs.running")() == ["job"]
    assert registry.builtin("test.ping") is None and registry.builtin(["jobs.running"]) is None
    assert Registry().builtin("jobs.running") is None  # per registry, not global
    with pytest.raises(ValueError):
        registry.attach("test.ping", running)


def test_context_parameter_is_recognised():
    assert takes_context(test_module.arg) and not takes_context(test_module.ping)
    assert not takes_context(lambda context: None) and not takes_context(len)


# ---------------------------------------------------------------- call_one

@pytest.mark.parametrize("fun, args, kwargs, value, rc", [
    ("test.ping", [], {}, True, 0),
    ("test.echo", ["hello"], {}, "hello", 0),
    ("test.echo", [], {"text": "kw"}, "kw", 0),
    ("test.retcode", [3], {}, 3, 3),
    ("test.retcode", [0], {}, 0, 0),
    ("test.sleep", [0], {}, True, 0),
    ("grains.get", ["os"], {}, "Linux", 0),
    ("grains.get", ["cpu:count"], {}, 4, 0),
    ("grains.item", ["os", "nope"], {}, {"os": "Linux", "nope": ""}, 0),  # Salt: a missing grain gives default=""
    ("sys.list_functions", ["test.p*"], {}, ["test.ping"], 0),
    ("sys.list_modules", [], {}, sorted(set(MODULES.values())), 0),
])
def test_call_one_values_and_retcodes(registry, ctx, fun, args, kwargs, value, rc):
    assert call_one(registry, fun, args, kwargs, ctx) == (value, rc)


def test_unknown_function_is_unavailable(registry, ctx):
    value, rc = call_one(registry, "os.system", ["id"], {}, ctx)
    assert rc == RETCODE_UNAVAILABLE and "not available" in value and "'os'" in value


def test_wrong_arguments_are_a_short_error(registry, ctx):
    value, rc = call_one(registry, "test.ping", ["unexpected"], {}, ctx)
    assert rc == 1 and value.startswith("ERROR: test.ping:") and "Traceback" not in value
    value, rc = call_one(registry, "test.echo", [], {"nope": 1}, ctx)
    assert rc == 1 and value.startswith("ERROR: test.echo:")
    value, rc = call_one(registry, "grains.get", [], {}, ctx)  # a function taking the context
    assert rc == 1 and value.startswith("ERROR: grains.get:") and "Traceback" not in value


def test_the_context_cannot_be_passed_by_the_caller(registry, ctx):
    value, rc = call_one(registry, "test.arg", [], {"ctx": "forged"}, ctx)
    assert rc == 1 and value.startswith("ERROR: test.arg:")


def test_command_error_is_its_message(registry, ctx):
    value, rc = call_one(registry, "test.sleep", ["soon"], {}, ctx)
    assert rc == 1 and value.startswith("ERROR: ") and "soon" in value and "Traceback" not in value
    value, rc = call_one(registry, "sys.list_modules", [], {}, dataclasses.replace(ctx, registry=None))
    assert rc == 1 and value == "ERROR: no function registry in this context"


def test_exception_is_a_traceback(registry, ctx):
    value, rc = call_one(registry, "test.exception", ["kaboom"], {}, ctx)
    assert rc == 1 and "Traceback" in value and "RuntimeError: kaboom" in value


def test_type_error_inside_the_function_is_a_traceback(registry, ctx):
    # a TypeError raised inside the module is a bug there, not a usage error: keep the traceback
    value, rc = call_one(registry, "test.retcode", [[1, 2]], {}, ctx)
    assert rc == 1 and "Traceback" in value and "TypeError" in value


def test_functions_see_the_minion_context(registry, ctx):
    value, rc = call_one(registry, "test.arg", [1, "two"], {"k": "v"}, ctx)
    assert rc == 0
    assert value == {"args": [1, "two"], "kwargs": {"k": "v"}, "types": ["int", "str"], "minion": "web1"}
    assert call_one(registry, "grains.items", [], {}, ctx) == ({"os": "Linux", "cpu": {"count": 4}}, 0)


# ---------------------------------------------------------------- execute

def test_execute_single_function(registry, ctx):
    assert execute(registry, _job("test.echo", ["hi"]), ctx) == {"return": "hi", "retcode": 0, "success": True}
    assert execute(registry, _job("test.echo", [], {"text": "kw"}), ctx)["return"] == "kw"
    assert execute(registry, _job("test.retcode", [2]), ctx) == {"return": 2, "retcode": 2, "success": False}
    assert execute(registry, _job("test.arg", [1]), ctx)["return"]["minion"] == "web1"


def test_execute_multi_function_keeps_every_result_of_a_repeated_function(registry, ctx):
    out = execute(registry, _job(["test.ping", "test.retcode", "test.retcode", "test.echo"], [[], [2], [5], ["x"]]),
                  ctx)
    assert out["return"] == [True, 2, 5, "x"]  # a name used twice: a list in call order, both results kept
    assert out["retcode"] == 2 and out["success"] is False  # the first failure


def test_execute_multi_function_all_ok(registry, ctx):
    out = execute(registry, _job(["test.ping", "test.echo"], [[], ["x"]]), ctx)
    assert out == {"return": {"test.ping": True, "test.echo": "x"}, "retcode": 0, "success": True}


def test_execute_multi_function_reports_the_first_failure(registry, ctx):
    out = execute(registry, _job(["test.retcode", "nope.nothing", "test.ping"], [[3], [], []]), ctx)
    assert out["return"]["test.retcode"] == 3 and out["return"]["test.ping"] is True
    assert "not available" in out["return"]["nope.nothing"]
    assert out["retcode"] == 3 and out["success"] is False


def test_execute_unknown_function(registry, ctx):
    out = execute(registry, _job("nope.nothing"), ctx)
    assert out["retcode"] == RETCODE_UNAVAILABLE and out["success"] is False


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
    out = decode(_wire_safe({"return": value, "retcode": 0, "success": True}))
    if why is None:
        assert out["return"] == value
    else:
        assert out["success"] is False and why in out["return"]


def test_the_return_leaves_room_for_the_job_arguments():
    value = [[0] * 1000] * (MAX_OBJECTS // 1000 - 10)
    assert decode(_wire_safe({"return": value}))["return"] == value
    job = _job("test.echo", [[0] * 20_000])
    assert "objects" in decode(_wire_safe({"return": value}, _objects(job)))["return"]
