"""The `test` and `sys` modules called as a job calls them (rx.minion.calls.call_one, a real registry),
with Salt's names, arguments and return shapes."""

from __future__ import annotations

import hashlib
import inspect
import platform

import pytest

import rx
from rx.minion.calls import call_one
from rx.minion.registry import Registry
from rx.modules import ExecContext, user_signature


@pytest.fixture
def reg() -> Registry:
    reg = Registry()
    reg.context = ExecContext(minion_id="web1", grains={"os": "Debian"}, registry=reg)
    return reg


def _call(reg: Registry, fun: str, *args, **kwargs):
    return call_one(reg, fun, list(args), kwargs, reg.context)


# ---------------------------------------------------------------- test

@pytest.mark.parametrize("fun, args, kwargs, value, rc", [
    ("test.ping", [], {}, True, 0),
    ("test.echo", ["hi there"], {}, "hi there", 0),
    ("test.sleep", [0.01], {}, True, 0),
    ("test.rand_sleep", [0], {}, True, 0),
    ("test.rand_sleep", [], {"max": 0}, True, 0),
    ("test.version", [], {}, rx.__version__, 0),
    ("test.arg", [1, "two", None], {"k": [1]}, {"args": [1, "two", None], "kwargs": {"k": [1]}}, 0),
    ("test.arg_type", [1, "two", 3.5], {"k": True},
     {"args": ["<class 'int'>", "<class 'str'>", "<class 'float'>"], "kwargs": {"k": "<class 'bool'>"}}, 0),
    ("test.kwarg", [], {"a": 1, "b": "two"}, {"a": 1, "b": "two"}, 0),
    ("test.outputter", [{"a": [1, 2]}], {}, {"a": [1, 2]}, 0),
    ("test.retcode", [], {}, True, 42),
    ("test.retcode", ["7"], {}, True, 7),
    ("test.retcode", ["x"], {}, "ERROR: code must be a whole number, got 'x'", 1),
    ("test.true", [], {}, True, 0),
    ("test.false", [], {}, False, 0),
    ("test.provider", ["test"], {}, "test", 0),
    ("test.provider", ["saltutil"], {}, "builtins", 0),
    ("test.provider", ["nope"], {}, "", 0),
    ("test.sleep", ["soon"], {}, "ERROR: length must be a number of seconds, got 'soon'", 1),
    ("test.sleep", [-1], {}, "ERROR: length must be a finite number of seconds >= 0, got -1", 1),
    ("test.fib", [-1], {}, "ERROR: num must not be negative", 1),
    ("test.random_hash", [], {"hash_type": "rot13"}, "ERROR: hash_type 'rot13' is not one of " +
     ", ".join(sorted(hashlib.algorithms_guaranteed)), 1),
])
def test_test_functions(reg, fun, args, kwargs, value, rc):
    assert _call(reg, fun, *args, **kwargs) == (value, rc)


@pytest.mark.parametrize("num, fib", [(0, 0), (1, 1), (2, 1), (3, 2), (10, 55), (50, 12586269025)])
def test_fib_returns_the_number_and_the_seconds_it_took(reg, num, fib):
    (value, seconds), rc = _call(reg, "test.fib", num)
    assert rc == 0 and value == fib and isinstance(seconds, float) and seconds >= 0


@pytest.mark.parametrize("kwargs, length", [({}, 64), ({"hash_type": "md5"}, 32), ({"hash_type": "sha512"}, 128),
                                            ({"size": 1}, 64)])
def test_random_hash(reg, kwargs, length):
    first, rc = _call(reg, "test.random_hash", **kwargs)
    assert rc == 0 and len(first) == length and int(first, 16) >= 0
    if "size" not in kwargs:
        assert _call(reg, "test.random_hash", **kwargs)[0] != first
    else:
        assert first in {hashlib.sha256(b"0").hexdigest(), hashlib.sha256(b"1").hexdigest()}


def test_exception_is_salts_traceback_return(reg):
    value, rc = _call(reg, "test.exception", "Oh noes!")
    assert rc == 1 and value.startswith("The minion function caused an exception: Traceback")
    assert value.rstrip().endswith("RuntimeError: Oh noes!")


def test_versions_report(reg):
    value, rc = _call(reg, "test.versions_report")
    lines = value.splitlines()
    assert rc == 0 and lines[0] == f"rx: {rx.__version__}" and lines[1] == f"Python: {platform.python_version()}"
    assert any(line.startswith("pyzmq: ") for line in lines) and lines[-1].startswith("System: Linux ")


def test_providers_is_keyed_by_file(reg):
    value, rc = _call(reg, "test.providers")
    assert rc == 0 and value["test"] == "test" and value["cmd"] == "cmd" and value["sys"] == "sys"


# ---------------------------------------------------------------- sys

@pytest.mark.parametrize("args, expected", [
    (["test.p*"], ["test.ping", "test.provider", "test.providers"]),
    (["sys"], ["sys.argspec", "sys.doc", "sys.list_functions", "sys.list_modules", "sys.list_unavailable",
               "sys.reload_modules"]),
    (["sys.doc", "test.echo"], ["sys.doc", "test.echo"]),
    (["saltutil.find*"], ["saltutil.find_job"]),
    (["jobs"], ["jobs.find", "jobs.kill", "jobs.running"]),
    (["nomodule"], []),
])
def test_list_functions(reg, args, expected):
    assert _call(reg, "sys.list_functions", *args) == (expected, 0)


def test_list_functions_without_arguments_lists_everything_sorted(reg):
    value, rc = _call(reg, "sys.list_functions")
    assert rc == 0 and value == sorted(value) and value == reg.functions() and "rxutil.running" in value


@pytest.mark.parametrize("args, expected", [
    ([], None),
    (["te*"], ["test"]),
    (["s[ay]*"], ["saltutil", "sys", "system"]),
    (["sys"], ["sys"]),
    (["nope"], []),
])
def test_list_modules(reg, args, expected):
    value, rc = _call(reg, "sys.list_modules", *args)
    assert rc == 0
    if expected is None:
        assert {"cmd", "grains", "jobs", "rxutil", "saltutil", "sys", "test"} <= set(value) and value == sorted(value)
    else:
        assert value == expected


def test_doc(reg):
    value, rc = _call(reg, "sys.doc", "test.ping", "sys")
    assert rc == 0 and value["test.ping"] == inspect.cleandoc(reg.resolve("test.ping").__doc__)
    assert {"sys.doc", "sys.argspec", "sys.reload_modules"} <= set(value) and "system.reboot" not in value
    assert _call(reg, "sys.doc", "saltutil.kill_job")[0]["saltutil.kill_job"].startswith("(alias of rxutil.kill_job)")
    assert "Differs from Salt: the default hash is sha256" in _call(reg, "sys.doc", "test.random_hash")[0][
        "test.random_hash"]
    everything, _ = _call(reg, "sys.doc")
    assert set(everything) == set(reg.functions())
    assert all("CLI example: rx '*' " in text for text in everything.values()), [
        f for f, text in everything.items() if "CLI example: rx '*' " not in text]


@pytest.mark.parametrize("module, expected", [
    ("test.echo", {"test.echo": {"args": ["text"], "defaults": None, "varargs": None, "kwargs": None}}),
    ("test.arg", {"test.arg": {"args": None, "defaults": None, "varargs": True, "kwargs": True}}),
    ("test.random_hash", {"test.random_hash": {"args": ["size", "hash_type"], "defaults": [9999999999, "sha256"],
                                               "varargs": None, "kwargs": None}}),
    ("test.provider", {"test.provider": {"args": ["module"], "defaults": None,  # ctx hidden
                                         "varargs": None, "kwargs": None}}),
    ("saltutil.find_job", {"saltutil.find_job": {"args": ["jid"], "defaults": None, "varargs": None,
                                                 "kwargs": None}}),  # a built-in: the minion is hidden
    ("rxutil.refresh_modules", {"rxutil.refresh_modules": {"args": None, "defaults": None, "varargs": None,
                                                           "kwargs": True}}),
])
def test_argspec_is_salts_shape(reg, module, expected):
    assert _call(reg, "sys.argspec", module) == (expected, 0)


def test_argspec_of_a_module_and_of_everything(reg):
    value, _ = _call(reg, "sys.argspec", "sys")
    assert set(value) == set(_call(reg, "sys.list_functions", "sys")[0])
    assert set(_call(reg, "sys.argspec")[0]) == set(reg.functions())


def test_every_function_has_hints_a_docstring_and_a_cli_example(reg):
    for fun in reg.functions():
        func = reg.function(fun)
        sig = user_signature(func)
        doc = reg.doc(fun)
        assert f"CLI example: rx '*' {fun.replace('saltutil.', 'rxutil.')}" in doc, fun
        assert sig.return_annotation is not inspect.Parameter.empty, fun
        assert all(p.annotation is not inspect.Parameter.empty for p in sig.parameters.values()), fun


def test_sys_needs_a_registry():
    assert call_one(Registry(), "sys.list_modules", [], {}, ExecContext()) == (
        "ERROR: no function registry in this context", 1)
