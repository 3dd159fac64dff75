"""Execution modules through real daemons, and the CLI's exit codes."""

from __future__ import annotations

import json

import pytest

from rx.client.local import LocalClient


def test_first_modules(fleet):
    with LocalClient(cfg=fleet.cfg) as c:
        assert c.cmd("m1", "test.version") == {"m1": __import__("rx").__version__}
        arg = c.cmd("m1", "test.arg", [1, "two", 3.5, True], kwarg={"k": "v"})["m1"]
        assert arg == {"args": [1, "two", 3.5, True], "kwargs": {"k": "v"}}
        types = c.cmd("m1", "test.arg_type", [1, "two", 3.5, True])["m1"]["args"]
        assert types == ["<class 'int'>", "<class 'str'>", "<class 'float'>", "<class 'bool'>"]
        assert c.cmd("m1", "cmd.run", ["echo out; echo err >&2"]) == {"m1": "out\nerr"}
        full = c.cmd("m1", "cmd.run_all", ["echo hi; exit 3"], full_return=True)["m1"]
        assert full["ret"] == {"pid": full["ret"]["pid"], "retcode": 3, "stdout": "hi", "stderr": ""}  # Salt's shape
        assert full["retcode"] == 3
        grains = c.cmd("m2", "grains.items")["m2"]
        for key in ("id", "host", "os", "kernel", "num_cpus", "ipv4"):
            assert key in grains
        assert grains["id"] == "m2" and "127.0.0.1" in grains["ipv4"]
        funcs = c.cmd("m1", "sys.list_functions")["m1"]
        assert {"test.ping", "cmd.run", "grains.items", "sys.list_functions"} <= set(funcs)
        assert c.cmd("m1", "test.sleep", [0.1]) == {"m1": True}


def test_module_exception_is_a_return_not_a_dead_minion(fleet):
    with LocalClient(cfg=fleet.cfg) as c:
        r = c.cmd("m1", "test.exception", ["boom"], full_return=True)["m1"]
        assert r["retcode"] == 1 and "success" not in r  # Salt's full_return shape
        assert "Traceback" in r["ret"] and "RuntimeError: boom" in r["ret"]
        assert c.cmd("m1", "test.ping") == {"m1": True}
    assert fleet.minions["m1"].alive()


def test_unknown_function_and_module_are_refused_on_the_minion(fleet):
    with LocalClient(cfg=fleet.cfg) as c:
        r = c.cmd("m1", "os.system", ["touch /tmp/rx-should-not-exist"], full_return=True)["m1"]
        assert r["retcode"] == 1 and r["ret"] == "'os.system' is not available. There is no module 'os'."
        r = c.cmd("m1", "test.__init__", full_return=True)["m1"]
        assert r["retcode"] != 0 and "not available" in r["ret"]


@pytest.mark.parametrize("args, code, stdout_check", [
    (["*", "test.ping"], 0, lambda out: json.loads(out) == {"m1": True, "m2": True}),
    (["m1", "test.retcode", "3"], 1, lambda out: json.loads(out) == {"m1": True}),
    (["m1", "cmd.run", "exit 7"], 1, lambda out: json.loads(out) == {"m1": ""}),
    (["-L", "m1,m2", "test.echo", "x"], 0, lambda out: json.loads(out) == {"m1": "x", "m2": "x"}),
    (["-E", "m[2-9]", "test.ping"], 0, lambda out: json.loads(out) == {"m2": True}),
    (["nomatch*", "test.ping"], 4, lambda out: json.loads(out) == {}),
])
def test_cli_exit_codes(fleet, args, code, stdout_check):
    r = fleet.run_cli("rx", *args, "--out", "json")
    assert r.returncode == code, (r.stdout, r.stderr)
    assert stdout_check(r.stdout), r.stdout


@pytest.mark.parametrize("args, message", [
    (["*", "ping"], "module.function"),
    (["-E", "(", "test.ping"], "bad regular expression"),
    (["*", "test.ping", "-t", "-1"], "timeout"),
    (["*", "test.ping", "--out", "nope"], "invalid choice"),
])
def test_cli_usage_errors_exit_2_and_publish_nothing(fleet, args, message):
    watch_before = set((fleet.root / "m" / "var" / "cache" / "rx" / "master" / "jobs").iterdir())
    r = fleet.run_cli("rx", *args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert message in r.stderr
    assert "Traceback" not in r.stderr
    assert set((fleet.root / "m" / "var" / "cache" / "rx" / "master" / "jobs").iterdir()) == watch_before


def test_cli_nested_output_and_yaml(fleet):
    r = fleet.run_cli("rx", "m1", "test.arg", "a", "k=1")
    assert r.returncode == 0
    assert r.stdout.startswith("m1:\n")
    assert "\x1b[" not in r.stdout  # not a TTY: no colour
    r = fleet.run_cli("rx", "m1", "test.echo", "hi", "--out", "yaml")
    assert r.stdout.strip() == "m1: hi"


def test_a_return_too_large_for_the_wire_is_reported_not_lost(fleet):
    with LocalClient(cfg=fleet.cfg) as c:
        r = c.cmd("m1", "cmd.run", ["head -c 9000000 /dev/zero | tr '\\\\0' a"], kwarg={"output_limit": 9_500_000},
                  full_return=True, timeout=30)["m1"]  # over cmd.run's default limit, which keeps returns sendable
        assert r["retcode"] == 1 and "cannot be sent" in r["ret"]
        assert c.cmd("m1", "test.ping") == {"m1": True}
    assert fleet.minions["m1"].output().count("authenticated with the master") == 1, "no re-auth loop"
