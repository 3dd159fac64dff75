"""rx.master.services.keys.KeyService (rx-key's logic): which keys an action takes, and what applying
it does to the key, grains and session stores (real files; the master is not running)."""

from __future__ import annotations

import asyncio

import pytest

from rx.master.services.events import EventService
from rx.master.services.keys import KeyService
from rx.master.store import KeyStoreError
from rx.transport.crypto import Identity, fingerprint


@pytest.fixture
def service(stores, tmp_path) -> KeyService:
    return KeyService(stores, EventService(str(tmp_path / "no-bus.ipc"), str(tmp_path / "no-pub.ipc")))


KEYS = {"web1": "accepted", "web2": "pending", "web3": "pending", "db1": "rejected", "db2": "denied"}


def _ids(found) -> list[tuple[str, str]]:
    return sorted((k.id, k.state) for k in found)


@pytest.fixture
def publics(stores) -> dict[str, bytes]:
    """One key per id in KEYS, filed in its state; web1 has grains cached."""
    async def fill() -> dict[str, bytes]:
        keys = {i: Identity.generate().public for i in KEYS}
        for minion_id, state in KEYS.items():
            await stores.keys.write(state, minion_id, keys[minion_id])
        await stores.grains.store("web1", {"os": "Linux"})
        return keys
    return asyncio.run(fill())


async def test_listing_and_fingerprints(service, publics, tmp_path):
    assert await service.listing() == {"accepted": ["web1"], "pending": ["web2", "web3"], "rejected": ["db1"],
                                       "denied": ["db2"]}
    prints = await service.fingerprints("web*")
    assert [(p.id, p.state, p.fingerprint) for p in prints] == [
        ("web1", "accepted", fingerprint(publics["web1"])), ("web2", "pending", fingerprint(publics["web2"])),
        ("web3", "pending", fingerprint(publics["web3"]))]
    assert await service.master_fingerprint() is None
    (tmp_path / "pki" / "master.pub").write_bytes(publics["web1"])
    assert await service.master_fingerprint() == fingerprint(publics["web1"])


@pytest.mark.parametrize("act, pattern, options, expect", [
    ("accept", None, {}, [("web2", "pending"), ("web3", "pending")]),
    ("accept", "web2", {}, [("web2", "pending")]),
    ("accept", "db*", {}, []),
    ("accept", "db*", {"include_rejected": True}, [("db1", "rejected")]),
    ("accept", "db*", {"include_denied": True}, [("db2", "denied")]),
    ("accept", "*", {"include_rejected": True, "include_denied": True},
     [("db1", "rejected"), ("db2", "denied"), ("web2", "pending"), ("web3", "pending")]),
    ("reject", None, {}, [("web2", "pending"), ("web3", "pending")]),
    ("reject", "web*", {}, [("web2", "pending"), ("web3", "pending")]),
    ("reject", "web*", {"include_accepted": True}, [("web1", "accepted"), ("web2", "pending"), ("web3", "pending")]),
    ("reject", None, {"include_accepted": True}, [("web1", "accepted"), ("web2", "pending"), ("web3", "pending")]),
    ("reject", "db*", {}, []),
    ("reject", "db*", {"include_denied": True}, [("db2", "denied")]),
    ("delete", "db*", {}, [("db1", "rejected"), ("db2", "denied")]),
    ("delete", None, {}, sorted(KEYS.items())),
])
async def test_candidates(service, publics, act, pattern, options, expect):
    assert _ids(await service.candidates(act, pattern, **options)) == expect


async def test_a_denied_key_is_not_accepted_while_another_key_is_accepted_for_that_id(service, stores, publics):
    await stores.keys.write("denied", "web1", Identity.generate().public)
    with pytest.raises(KeyStoreError, match="web1"):
        await service.candidates("accept", "web1", include_denied=True)


async def test_unknown_action(service):
    with pytest.raises(ValueError):
        await service.candidates("steal", None)


async def test_accepting_moves_the_keys_and_keeps_the_session(service, stores, publics):
    serial = (await stores.session.current()).serial
    assert await service.apply("accept", await service.candidates("accept", "web2")) is False
    assert await stores.keys.read("accepted", "web2") == publics["web2"]
    assert await stores.keys.read("pending", "web2") is None
    assert (await stores.session.current()).serial == serial


@pytest.mark.parametrize("act, pattern, revoked", [
    ("reject", "web1", True), ("delete", "web1", True), ("reject", "web2", False), ("delete", "db*", False),
])
async def test_revoking_an_accepted_key_rotates_the_session(service, stores, publics, act, pattern, revoked):
    serial = (await stores.session.current()).serial
    found = await service.candidates(act, pattern, include_accepted=True)
    assert await service.apply(act, found) is revoked
    assert (await stores.session.current()).serial == serial + revoked
    for k in found:
        assert await stores.keys.read(k.state, k.id) is None
        assert (await stores.keys.read("rejected", k.id) == k.public) is (act == "reject")


async def test_deleting_a_key_forgets_its_grains(service, stores, publics):
    assert await stores.grains.get("web1") == {"os": "Linux"}
    await service.apply("delete", await service.candidates("delete", "web1"))
    assert await stores.grains.get("web1") is None


async def test_keys_with_their_public_keys(service, publics):
    assert [(k.id, k.state, k.public) for k in await service.keys("web*", ("accepted", "pending"))] == [
        ("web1", "accepted", publics["web1"]), ("web2", "pending", publics["web2"]),
        ("web3", "pending", publics["web3"])]


async def test_rotate(service, stores):
    serial = (await stores.session.current()).serial
    assert await service.rotate() == serial + 1 == (await stores.session.current()).serial
