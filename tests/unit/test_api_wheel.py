"""rx-api's wheel-style functions (rx.api.wheel) in Salt's shapes, over real key stores (files; the master is
not running), how a chunk's arguments bind to them, and what config.values may return."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from rx.api import wheel
from rx.api.clients import bind
from rx.api.lowstate import parse_low
from rx.client.results import BadRequest
from rx.config import MasterConfig
from rx.configspec import keys
from rx.master.services.events import EventService
from rx.master.services.keys import KeyService
from rx.transport.crypto import Identity, fingerprint

KEYS = {"web1": "accepted", "web2": "pending", "web3": "pending", "db1": "rejected", "db2": "denied"}


@pytest.fixture
def ctx(stores, tmp_path):
    publics = {i: Identity.generate().public for i in KEYS}

    async def fill() -> None:
        for minion_id, state in KEYS.items():
            await stores.keys.write(state, minion_id, publics[minion_id])
    asyncio.run(fill())
    (tmp_path / "pki" / "master.pub").write_bytes(b"x")
    events = EventService(str(tmp_path / "no-bus.ipc"), str(tmp_path / "no-pub.ipc"))
    return SimpleNamespace(services=SimpleNamespace(keys=KeyService(stores, events), stores=stores),
                           cfg=MasterConfig(pki_dir=str(tmp_path / "pki")), publics=publics)


async def test_list_all_and_list(ctx):
    assert await wheel.key_list_all(ctx) == {"local": ["master.pub"], "minions": ["web1"],
                                             "minions_pre": ["web2", "web3"], "minions_rejected": ["db1"],
                                             "minions_denied": ["db2"]}
    assert await wheel.key_list(ctx, "pre") == {"minions_pre": ["web2", "web3"]}
    assert await wheel.key_list(ctx, "acc") == {"minions": ["web1"]}
    assert set(await wheel.key_list(ctx, "all")) == {"minions", "minions_pre", "minions_rejected", "minions_denied"}
    with pytest.raises(BadRequest):
        await wheel.key_list(ctx, "sometimes")


async def test_finger(ctx):
    assert await wheel.key_finger(ctx, "web*") == {
        "minions": {"web1": fingerprint(ctx.publics["web1"])},
        "minions_pre": {"web2": fingerprint(ctx.publics["web2"]), "web3": fingerprint(ctx.publics["web3"])}}
    assert await wheel.key_finger(ctx, ["db1", "nosuch"]) == {"minions_rejected": {"db1": fingerprint(ctx.publics["db1"])}}
    with pytest.raises(BadRequest, match="sha256"):
        await wheel.key_finger(ctx, "*", hash_type="md5")


async def test_accept_reject_delete_in_salts_shape(ctx):
    assert await wheel.key_accept(ctx, "web2") == {"minions": ["web2"]}
    assert await wheel.key_accept(ctx, "db*") == {"minions_rejected": ["db1"], "minions_denied": ["db2"]}
    assert await wheel.key_accept(ctx, "db1", include_rejected=True) == {"minions": ["db1"]}
    assert await wheel.key_reject(ctx, "web3,web1") == {"minions": ["web1"], "minions_rejected": ["web3"]}
    assert await wheel.key_reject(ctx, ["web1"], include_accepted=True) == {"minions_rejected": ["web1"]}
    assert await wheel.key_delete(ctx, "web*") == {}
    assert (await wheel.key_list_all(ctx))["minions_rejected"] == []
    for empty in ("", [], " , "):
        with pytest.raises(BadRequest, match="match"):
            await wheel.key_delete(ctx, empty)


def test_a_glob_from_a_url_matches_that_id_only():
    assert wheel.exact("web[1]*") == "web[[]1][*]"


BINDINGS = [
    ({"fun": "key.finger", "match": "web1"}, [], {"match": "web1"}),
    ({"fun": "key.finger", "arg": ["web1"]}, ["web1"], {}),
    ({"fun": "key.accept", "arg": ["match=web*", "include_rejected=true"]}, [],
     {"match": "web*", "include_rejected": True}),
    ({"fun": "key.accept", "kwarg": {"match": "a"}, "match": "b"}, [], {"match": "a"}),
    ({"fun": "key.list_all", "timeout": 5}, [], {}),
]


@pytest.mark.parametrize("chunk,args,kwargs", BINDINGS)
def test_a_chunks_arguments_bind_as_salt_api_passes_them(chunk, args, kwargs):
    low = parse_low({"client": "wheel", **chunk})
    assert bind(wheel.WHEEL[low.fun], low.fun, low) == (args, kwargs)


@pytest.mark.parametrize("chunk", [{"fun": "key.finger"}, {"fun": "key.list_all", "arg": ["x"]},
                                   {"fun": "key.delete", "kwarg": {"match": "a", "force": True}}])
def test_wrong_arguments_are_a_usage_error(chunk):
    low = parse_low({"client": "wheel", **chunk})
    with pytest.raises(BadRequest, match="usage"):
        bind(wheel.WHEEL[low.fun], low.fun, low)


def test_the_wheel_allow_list_is_salts_names():
    assert sorted(wheel.WHEEL) == ["config.values", "key.accept", "key.delete", "key.finger", "key.list",
                                   "key.list_all", "key.reject", "minions.connected"]


def test_every_setting_is_shown_or_withheld_by_config_values():
    """A new setting must be classified here before config.values returns it (deny by default)."""
    declared = set(keys(MasterConfig))
    assert wheel.CONFIG_SHOWN | wheel.CONFIG_WITHHELD == declared, "classify the new settings in rx/api/wheel.py"
    assert not wheel.CONFIG_SHOWN & wheel.CONFIG_WITHHELD


async def test_config_values_never_returns_users_rights_or_passwords(tmp_path):
    cfg = MasterConfig(root_dir=str(tmp_path), external_auth={"file": {"^filename": "/x", "bob": [".*"]}},
                       publisher_acl={"fred": ["test.*"]}, postgres_dsn="host=db password=hunter2",
                       ssl_key="/etc/rx/key.pem", rest_cherrypy={"port": 8000})
    values = await wheel.config_values(SimpleNamespace(cfg=cfg))
    assert not wheel.CONFIG_WITHHELD & set(values)
    assert "hunter2" not in repr(values) and "bob" not in repr(values) and "fred" not in repr(values)
    assert values["root_dir"] == str(tmp_path) and values["api_enable_clients"] == []
