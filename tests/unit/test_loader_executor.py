"""rx.minion.loader (the allow-list) and rx.minion.executor.call_one / execute, in-process."""

from __future__ import annotations

import pytest

from rx import modules
from rx.minion.executor import RETCODE_UNAVAILABLE, call_one, execute
from rx.minion.loader import INLINE_FUNCTIONS, Loader, UnknownFunction
from rx.modules import ModuleContext, set_context
from rx.modules import test as test_module
from rx.transport.codec import decode, encode
from rx.transport.messages import Job

JID = "20240102030405060708"


@pytest.fixture
def loader() -> Loader:
    return Loader()


@pytest.fixture
def context():
    old = modules.context()
    ctx = ModuleContext(minion_id="web1", grains={"os": "Linux"})
    set_context(ctx)
    yield ctx
    set_context(old)


def _job(fun, arg=None, kwarg=None) -> Job:
    return Job(jid=JID, fun=fun, arg=arg if arg is not None else [], kwarg=kwarg or {}, tgt="*", tgt_type="glob",
               ts=0.0)


# ---------------------------------------------------------------- loader

def test_resolve_allowed_function(loader):
    assert loader.resolve("test.ping") is test_module.ping
    assert loader.resolve("test.ping")() is True


@pytest.mark.parametrize("fun", [
    "os.system", "subprocess.run", "builtins.eval", "rx.config", "test.time", "test.context", "test.Result",
    "test.__class__", "test.__dict__", "test._private", "cmd.subprocess", "cmd._run", "sys.fnmatch",
    "test", "test.ping.x", "", ".ping", "test.", "test.ping()", "test.ping\n", "../test.ping", "test/ping.x",
    None, 5, ["test.ping"],
], ids=repr)
def test_resolve_refuses_anything_not_allow_listed(loader, fun):
    with pytest.raises(UnknownFunction):
        loader.resolve(fun)


def test_every_module_function_is_in_its_all_and_callable(loader):
    funs = loader.functions()
    assert funs == sorted(funs)
    assert {"test.ping", "test.echo", "cmd.run", "grains.items", "sys.list_functions"} <= set(funs)
    assert {"jobs.running", "jobs.find", "jobs.kill"} <= set(funs)
    for fun in funs:
        if fun not in INLINE_FUNCTIONS:  # those run in the minion process itself
            assert callable(loader.resolve(fun))
    assert "test.time" not in funs and "cmd.subprocess" not in funs


def test_modules_are_loaded_once(loader):
    assert loader.module("test") is Loader().module("test")


# ---------------------------------------------------------------- call_one

@pytest.mark.parametrize("fun, args, kwargs, value, rc", [
    ("test.ping", [], {}, True, 0),
    ("test.echo", ["hello"], {}, "hello", 0),
    ("test.echo", [], {"text": "kw"}, "kw", 0),
    ("test.retcode", [3], {}, 3, 3),
    ("test.retcode", [0], {}, 0, 0),
    ("test.sleep", [0], {}, True, 0),
])
def test_call_one_values_and_retcodes(loader, fun, args, kwargs, value, rc):
    assert call_one(loader, fun, args, kwargs) == (value, rc)


def test_unknown_function_is_unavailable(loader):
    value, rc = call_one(loader, "os.system", ["id"], {})
    assert rc == RETCODE_UNAVAILABLE and "not available" in value and "'os'" in value


def test_wrong_arguments_are_a_short_error(loader):
    value, rc = call_one(loader, "test.ping", ["unexpected"], {})
    assert rc == 1 and value.startswith("ERROR: test.ping:") and "Traceback" not in value
    value, rc = call_one(loader, "test.echo", [], {"nope": 1})
    assert rc == 1 and value.startswith("ERROR: test.echo:")


def test_command_error_is_its_message(loader):
    value, rc = call_one(loader, "test.sleep", ["soon"], {})
    assert rc == 1 and value.startswith("ERROR: ") and "soon" in value and "Traceback" not in value


def test_exception_is_a_traceback(loader):
    value, rc = call_one(loader, "test.exception", ["kaboom"], {})
    assert rc == 1 and "Traceback" in value and "RuntimeError: kaboom" in value


def test_type_error_inside_the_function_is_a_traceback(loader):
    # a TypeError raised inside the module is a bug there, not a usage error: keep the traceback
    value, rc = call_one(loader, "test.retcode", [[1, 2]], {})
    assert rc == 1 and "Traceback" in value and "TypeError" in value


def test_functions_see_the_minion_context(loader, context):
    value, rc = call_one(loader, "test.arg", [1, "two"], {"k": "v"})
    assert rc == 0
    assert value == {"args": [1, "two"], "kwargs": {"k": "v"}, "types": ["int", "str"], "minion": "web1"}


# ---------------------------------------------------------------- execute

def test_execute_single_function(loader):
    assert execute(loader, _job("test.echo", ["hi"])) == {"return": "hi", "retcode": 0, "success": True}
    assert execute(loader, _job("test.echo", [], {"text": "kw"}))["return"] == "kw"
    assert execute(loader, _job("test.retcode", [2])) == {"return": 2, "retcode": 2, "success": False}


def test_execute_multi_function_reports_each_and_the_first_failure(loader):
    out = execute(loader, _job(["test.ping", "test.retcode", "test.retcode", "test.echo"], [[], [2], [5], ["x"]]))
    assert out["return"] == {"test.ping": True, "test.retcode": 5, "test.echo": "x"}  # keyed by name: last wins
    assert out["retcode"] == 2 and out["success"] is False


def test_execute_multi_function_all_ok(loader):
    out = execute(loader, _job(["test.ping", "test.echo"], [[], ["x"]]))
    assert out == {"return": {"test.ping": True, "test.echo": "x"}, "retcode": 0, "success": True}


def test_execute_unknown_function(loader):
    out = execute(loader, _job("nope.nothing"))
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
def test_any_return_value_survives_the_wire(loader, value, plain):
    # what the job process returns must decode on the other side (codec.decode refuses non-str map keys)
    out = execute(loader, _job("test.echo", [value]))
    assert decode(encode(out))["return"] == plain
