"""The `pillar` execution module on an ExecContext (Salt's names, signatures and return shapes), the answer of a
minion without a pillar, and `config.get` reading the pillar after the config and the grains."""

from __future__ import annotations

import pytest

from rx.config import MinionConfig
from rx.modules import CommandError, ExecContext
from rx.modules import config as config_mod
from rx.modules import pillar as p

PILLAR = {"role": "web", "users": {"alice": {"uid": 1001, "groups": ["adm"]}, "bob": {"uid": 1002}},
          "apps": ["nginx", {"name": "php", "port": 9000}], "db": {"password": "s3cr3t", "port": 5432},
          "master": "from-pillar", "os": "from-pillar"}


def ctx(pillar=PILLAR, error="") -> ExecContext:
    return ExecContext(minion_id="web1", grains={"os": "Debian", "os_family": "Debian"}, pillar=pillar,
                       pillar_error=error, config=MinionConfig(id="web1", master="salt.example"))


@pytest.mark.parametrize("key, kw, expect", [
    ("role", {}, "web"),
    ("users:alice:uid", {}, 1001),
    ("users|bob|uid", {"delimiter": "|"}, 1002),
    ("apps:0", {}, "nginx"),
    ("apps:port", {}, 9000),                      # a list level: the first dict that has the key
    ("nope", {}, ""),
    ("nope:deeper", {"default": 7}, 7),
    ("users:carol", {"default": {"uid": 0}, "merge": True}, {"uid": 0}),
    ("users:alice", {"default": {"uid": 0, "shell": "/bin/sh"}, "merge": True},
     {"uid": 1001, "shell": "/bin/sh", "groups": ["adm"]}),
    ("apps", {"default": ["nginx", "redis"], "merge": True}, ["nginx", "redis", {"name": "php", "port": 9000}]),
])
def test_get(key, kw, expect):
    assert p.get(ctx(), key, **kw) == expect
    assert p.fetch(ctx(), key, **kw) == expect


def test_items_item_raw_ls_keys():
    assert p.items(ctx()) == PILLAR
    assert p.data(ctx()) == PILLAR
    assert p.items(ctx(), "role", "db:port") == {"role": "web", "db:port": 5432}
    assert p.item(ctx(), "role", "nope", "users:bob:uid") == {"role": "web", "nope": "", "users:bob:uid": 1002}
    assert p.item(ctx(), "nope", default=None) == {"nope": ""}
    assert p.item(ctx(), "nope", default="x") == {"nope": "x"}
    assert p.raw(ctx()) == PILLAR and p.raw(ctx(), "role") == "web" and p.raw(ctx(), "nope") == {}
    assert p.ls(ctx()) == list(PILLAR)
    assert p.keys(ctx(), "users") == ["alice", "bob"]
    assert p.keys(ctx(), "users:alice") == ["uid", "groups"]


@pytest.mark.parametrize("key, message", [("nope", "Pillar key not found: nope"),
                                          ("role", "Pillar value in key role is not a dict")])
def test_keys_errors(key, message):
    with pytest.raises(CommandError, match=message):
        p.keys(ctx(), key)


def test_obfuscate_shows_the_shape_not_the_values():
    out = p.obfuscate(ctx())
    assert out["db"] == {"password": "<str>", "port": "<int>"}
    assert out["apps"] == ["<str>", {"name": "<str>", "port": "<int>"}]
    assert "s3cr3t" not in repr(out)


def test_filter_by_looks_at_a_pillar_key():
    lookup = {"web": "Serve it up", "db": "I query", "default": "x_x"}
    assert p.filter_by(ctx(), lookup, "role") == "Serve it up"
    assert p.filter_by(ctx({"role": "cache"}), lookup, "role") == "x_x"


@pytest.mark.parametrize("call", [
    lambda c: p.items(c), lambda c: p.item(c, "role"), lambda c: p.get(c, "role", default="x"),
    lambda c: p.keys(c, "users"), lambda c: p.ls(c), lambda c: p.raw(c), lambda c: p.obfuscate(c),
    lambda c: p.filter_by(c, {"web": 1}, "role"),
])
def test_without_a_pillar_every_function_says_why(call):
    with pytest.raises(CommandError, match="this minion has no pillar: base:app.sls line 3: Jinja syntax error"):
        call(ctx(pillar=None, error="base:app.sls line 3: Jinja syntax error"))


def test_an_empty_pillar_is_a_pillar():
    assert p.items(ctx(pillar={})) == {} and p.get(ctx(pillar={}), "x", default=1) == 1


@pytest.mark.parametrize("call", [lambda c: p.get(c, "role", pillarenv="dev"), lambda c: p.items(c, pillar={"x": 1})])
def test_a_fresh_compile_for_one_call_is_refused(call):
    with pytest.raises(CommandError, match="rx does not compile a pillar for one call"):
        call(ctx())


def test_config_get_reads_the_pillar_last():
    assert config_mod.get(ctx(), "master") == "salt.example"          # the minion config first
    assert config_mod.get(ctx(), "os") == "Debian"                    # then the grains
    assert config_mod.get(ctx(), "users:alice:uid") == 1001           # then the pillar
    assert config_mod.get(ctx(), "users:alice:uid", omit_pillar=True) == ""
    assert config_mod.get(ctx(pillar=None), "users:alice:uid", default="d") == "d"
