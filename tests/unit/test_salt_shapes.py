"""The Salt-shaped LocalClient without a master: the pure translations of rx.client.saltshape (table-driven),
how `c_path` names the config, and its methods' parameters against Salt's, in Salt's order, as recorded from
Salt by tests/support/salt_shapes.py (tests/integration/data/salt_localclient.json)."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest

from rx.client import saltshape as shape
from rx.client.results import Missing, Published
from rx.client.synclocal import LocalClient, config_dir_of
from rx.config import ConfigError
from tests.support import lc_contract

RECORD = json.loads((Path(__file__).resolve().parents[1] / "integration" / "data" / "salt_localclient.json")
                    .read_text())


@pytest.mark.parametrize("arg, kwarg, expected", [
    (["a", 1], None, (["a", 1], {})),
    (["a", "k=v", "n=3", "t=true"], None, (["a"], {"k": "v", "n": 3, "t": True})),
    (["a", {"k": "v", "__kwarg__": True}], None, (["a"], {"k": "v"})),
    (["a", {"k": "v"}], None, (["a", {"k": "v"}], {})),                 # a plain dict is an argument
    (["a", {"k": "v", "__kwarg__": "yes"}], None, (["a", {"k": "v", "__kwarg__": "yes"}], {})),
    (["k=v"], {"k": "w"}, ([], {"k": "w"})),                              # kwarg wins
    (["echo a=b"], None, (["echo a=b"], {})),                             # not a name before '='
    (["a==b", "=x", "1a=b"], None, (["a==b", "=x", "1a=b"], {})),
    (["pkg.name=x", "with-dash=y"], None, ([], {"pkg.name": "x", "with-dash": "y"})),
    (["k=line1\nline2"], None, (["k=line1\nline2"], {})),                 # a value over lines stays positional
    (["mode=0644", "at=10:30"], None, ([], {"mode": "0644", "at": "10:30"})),
    ((), {"x": 1}, ([], {"x": 1})),
])
def test_condition_args(arg, kwarg, expected):
    assert shape.condition_args("test.arg", arg, kwarg) == expected


def test_condition_args_multi_function_and_bad_arg():
    assert shape.condition_args(["test.ping", "test.echo"], [[], ["k=v"]], None) == ([[], ["k=v"]], {})
    with pytest.raises(TypeError):
        shape.condition_args("test.echo", "hello", None)  # Salt would send five one-letter arguments


@pytest.mark.parametrize("tgt, tgt_type, minions, expected", [
    ("m1,m9", "list", ["m1"], ["m9"]),
    (["m1", "m9", "m8"], "list", ["m1"], ["m8", "m9"]),
    ("m1 m9", "list", ["m1"], ["m9"]),
    ("m9", "list", [], []),               # nothing matched: not "missing"
    ("m*", "glob", ["m1"], []),
    ("m1,m2", "list", ["m1", "m2"], []),
])
def test_unmatched_ids_of_a_list_target(tgt, tgt_type, minions, expected):
    assert shape.unmatched(tgt, tgt_type, minions) == expected


@pytest.mark.parametrize("given, expected", [(None, None), (5, 5), (2.5, 2.5), ("7", 7.0), ("soon", None),
                                             (True, None), ([5], None)])
def test_timeout_as_salt_takes_it(given, expected):
    assert shape.timeout_of(given) == expected


def test_pub_data_and_returns():
    assert shape.pub_data(Published("20260101000000000001", ["m1"])) == {"jid": "20260101000000000001",
                                                                          "minions": ["m1"]}
    assert shape.pub_data(Published("20260101000000000001", [])) == {}
    assert shape.pub_data(None) == {}
    rich = {"ret": True, "retcode": 0, "success": True, "jid": "20260101000000000001"}
    assert shape.returned(rich) == {"ret": True, "retcode": 0, "jid": "20260101000000000001"}
    assert shape.cached({"m1": {"return": "x", "retcode": 0, "success": True}}) == {"m1": {"ret": "x"}}


@pytest.mark.parametrize("reason, rx_reasons, expected_ret", [
    ("not connected", False, "Minion did not return. [Not connected]"),
    ("no response", False, "Minion did not return. [No response]\n"),
    ("still running", False, "Minion did not return. [No response]\n"),
    ("no grains cached", False, "Minion did not return. [No response]\n"),
    ("still running", True, "Minion did not return. [still running]"),
    (shape.NO_KEY, True, "Minion did not return. [no accepted key]"),
])
def test_missing_minions(reason, rx_reasons, expected_ret):
    item = Missing("m3", reason).as_return("20260101000000000001")
    cli = shape.cli_missing(item, "20260101000000000001", rx_reasons)
    assert cli["ret"].startswith(expected_ret) and cli["out"] == "no_return" and cli["retcode"] == 1
    if expected_ret.endswith("\n"):
        assert cli["ret"].endswith("rx-run jobs.lookup_jid 20260101000000000001")
    assert ("reason" in cli) is rx_reasons
    assert shape.iter_missing(item, rx_reasons) == ({"failed": True, "reason": reason} if rx_reasons
                                                    else {"failed": True})


def test_c_path_is_the_config_file_or_its_dir(tmp_path):
    (tmp_path / "master").write_text("timeout: 7\n")
    assert config_dir_of(str(tmp_path / "master")) == str(tmp_path)
    assert config_dir_of(str(tmp_path)) == str(tmp_path)
    assert config_dir_of(None) is None
    assert config_dir_of(str(tmp_path / "nodir" / "master")) == str(tmp_path / "nodir")
    (tmp_path / "other.conf").write_text("")
    with pytest.raises(ConfigError, match="file named 'master'"):
        config_dir_of(str(tmp_path / "other.conf"))
    for c_path in (str(tmp_path / "master"), str(tmp_path)):
        with LocalClient(c_path) as c:
            assert c.opts["timeout"] == 7 and c.opts["config_dir"] == str(tmp_path)
    with LocalClient(str(tmp_path), {"timeout": 9}) as c:  # mopts: settings over the file's
        assert c.opts["timeout"] == 9
    with pytest.raises(TypeError, match="AsyncLocalClient"):
        LocalClient(str(tmp_path), io_loop=object())


@pytest.mark.parametrize("method", lc_contract.METHODS)
def test_parameters_in_salts_order(method):
    """Salt's named parameters come first, in Salt's order, with Salt's defaults (rx's own come after,
    keyword-only); `c_path` defaults to rx's config dir instead of /etc/salt/master."""
    salt = RECORD["signatures"][method]
    params = list(inspect.signature(getattr(LocalClient, method)).parameters.values())[1:]
    named = [[p.name, None if p.default is p.empty else repr(p.default)] for p in params
             if p.kind is p.POSITIONAL_OR_KEYWORD]
    if method == "__init__":
        salt, named = salt[1:], named[1:]
    assert named == salt
