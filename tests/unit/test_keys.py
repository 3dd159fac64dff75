"""rx.master.keys: the minion key store on a real filesystem (tmp_path)."""

from __future__ import annotations

import base64
import os
import stat

import pytest

from rx.master.keys import STATES, KeyError_, KeyInfo, KeyStore
from rx.transport.crypto import Identity, fingerprint

DIRS = {"accepted": "minions", "pending": "minions_pre", "rejected": "minions_rejected", "denied": "minions_denied"}


@pytest.fixture
def store(tmp_path) -> KeyStore:
    ks = KeyStore(tmp_path / "pki")
    ks.ensure()
    return ks


def _key() -> bytes:
    return Identity.generate().public


def _where(store: KeyStore, minion_id: str) -> dict[str, bytes]:
    """Every state that holds a key for `minion_id`, with that key."""
    return {s: k for s in STATES if (k := store.read(s, minion_id)) is not None}


def test_ensure_makes_private_dirs(store, tmp_path):
    assert stat.S_IMODE(os.stat(tmp_path / "pki").st_mode) == 0o700
    for name in DIRS.values():
        assert stat.S_IMODE(os.stat(tmp_path / "pki" / name).st_mode) == 0o700


def test_key_files_are_base64_in_the_state_dir(store, tmp_path):
    key = _key()
    store.write("pending", "web1", key)
    assert base64.b64decode((tmp_path / "pki" / "minions_pre" / "web1").read_bytes().strip()) == key
    assert store.read("pending", "web1") == key
    assert store.read("accepted", "web1") is None


# ---------------------------------------------------------------- decide (what an _auth gets)

def test_unknown_key_is_filed_as_pending(store):
    key = _key()
    assert store.decide("web1", key, auto_accept=False) == "pending"
    assert _where(store, "web1") == {"pending": key}
    assert store.decide("web1", key, auto_accept=False) == "pending"  # asking again changes nothing
    assert _where(store, "web1") == {"pending": key}


def test_pending_id_with_a_different_key_is_denied(store):
    first, second = _key(), _key()
    store.decide("web1", first, auto_accept=False)
    assert store.decide("web1", second, auto_accept=False) == "denied"
    assert _where(store, "web1") == {"pending": first, "denied": second}


def test_pending_id_with_a_different_key_is_denied_even_with_auto_accept(store):
    first, second = _key(), _key()
    store.decide("web1", first, auto_accept=False)
    assert store.decide("web1", second, auto_accept=True) == "denied"
    assert _where(store, "web1") == {"pending": first, "denied": second}


def test_accepted_key_is_accepted(store):
    key = _key()
    store.write("accepted", "web1", key)
    assert store.decide("web1", key, auto_accept=False) == "accepted"
    assert store.is_accepted("web1")


def test_accepted_id_with_a_different_key_is_denied_and_never_swapped_in(store):
    good, impostor = _key(), _key()
    store.write("accepted", "web1", good)
    for auto in (False, True):
        assert store.decide("web1", impostor, auto_accept=auto) == "denied"
    assert _where(store, "web1") == {"accepted": good, "denied": impostor}


def test_rejected_id_stays_rejected(store):
    key = _key()
    store.write("rejected", "web1", key)
    assert store.decide("web1", key, auto_accept=True) == "rejected"
    assert store.decide("web1", _key(), auto_accept=True) == "rejected"
    assert _where(store, "web1") == {"rejected": key}


def test_auto_accept_files_an_unknown_key_as_accepted(store):
    key = _key()
    assert store.decide("web1", key, auto_accept=True) == "accepted"
    assert _where(store, "web1") == {"accepted": key}


def test_auto_accept_promotes_the_same_pending_key(store):
    key = _key()
    store.decide("web1", key, auto_accept=False)
    assert store.decide("web1", key, auto_accept=True) == "accepted"
    assert _where(store, "web1") == {"accepted": key}


# ---------------------------------------------------------------- listing, finding, moving

def test_listing_find_and_ignore_dotfiles(store, tmp_path):
    keys = {i: _key() for i in ("web1", "web2", "db1")}
    store.write("accepted", "web1", keys["web1"])
    store.write("pending", "web2", keys["web2"])
    store.write("rejected", "db1", keys["db1"])
    (tmp_path / "pki" / "minions" / ".web9.tmp123").write_bytes(b"partial")
    assert store.listing() == {"accepted": ["web1"], "pending": ["web2"], "rejected": ["db1"], "denied": []}
    found = store.find("web*")
    assert [(k.id, k.state) for k in found] == [("web1", "accepted"), ("web2", "pending")]
    assert found[0].public == keys["web1"] and found[0].fingerprint == fingerprint(keys["web1"])
    assert [k.id for k in store.find("*", states=("rejected",))] == ["db1"]
    assert store.find("nomatch*") == []


def test_find_is_case_sensitive(store):
    store.write("accepted", "Web1", _key())
    assert store.find("web*") == [] and [k.id for k in store.find("Web*")] == ["Web1"]


def test_ids_of_a_missing_dir_is_empty(tmp_path):
    assert KeyStore(tmp_path / "none").listing() == {s: [] for s in STATES}


def test_move_pending_to_accepted(store):
    key = _key()
    store.decide("web1", key, auto_accept=False)
    store.move(KeyInfo("web1", "pending", key), "accepted")
    assert _where(store, "web1") == {"accepted": key}


def test_move_denied_to_accepted_replaces_the_old_key(store):
    old, new = _key(), _key()
    store.write("accepted", "web1", old)
    store.decide("web1", new, auto_accept=False)
    store.move(KeyInfo("web1", "denied", new), "accepted")
    assert _where(store, "web1") == {"accepted": new}
    assert store.decide("web1", old, auto_accept=False) == "denied"


def test_move_accepted_to_rejected(store):
    key = _key()
    store.write("accepted", "web1", key)
    store.move(KeyInfo("web1", "accepted", key), "rejected")
    assert _where(store, "web1") == {"rejected": key}
    assert not store.is_accepted("web1")


def test_remove(store):
    store.write("pending", "web1", _key())
    assert store.remove("pending", "web1") is True
    assert store.remove("pending", "web1") is False
    assert _where(store, "web1") == {}


def test_longest_valid_id_can_be_stored(store, tmp_path):
    long_id = "m" * 255
    key = _key()
    assert store.decide(long_id, key, auto_accept=False) == "pending"
    assert store.read("pending", long_id) == key
    assert sorted(os.listdir(tmp_path / "pki" / "minions_pre")) == [long_id]  # no temp files left behind


def test_write_leaves_no_temp_files(store, tmp_path):
    for _ in range(3):
        store.write("accepted", "web1", _key())
    assert os.listdir(tmp_path / "pki" / "minions") == ["web1"]


# ---------------------------------------------------------------- ids and paths

@pytest.mark.parametrize("bad_id", ["../web1", "a/b", "..", ".", ".hidden", "", "a\\b", "a\x00b", "x" * 256, "a\nb"],
                         ids=repr)
def test_bad_ids_never_touch_the_filesystem(store, tmp_path, bad_id):
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    for call in (lambda: store.read("accepted", bad_id), lambda: store.write("accepted", bad_id, _key()),
                 lambda: store.remove("accepted", bad_id), lambda: store.decide(bad_id, _key(), True)):
        with pytest.raises(KeyError_):
            call()
    assert store.is_accepted(bad_id) is False
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_symlink_out_of_the_key_dir_is_refused(store, tmp_path):
    outside = tmp_path / "outside"
    outside.write_bytes(base64.b64encode(_key()))
    os.symlink(outside, tmp_path / "pki" / "minions" / "web1")
    with pytest.raises(KeyError_, match="escapes"):
        store.read("accepted", "web1")
    assert store.is_accepted("web1") is False


@pytest.mark.parametrize("content", [b"not base64!!", b"\xff\xfe", b"QUJD=extra"])
def test_corrupt_key_file(store, tmp_path, content):
    (tmp_path / "pki" / "minions" / "web1").write_bytes(content)
    with pytest.raises(KeyError_, match="corrupt"):
        store.read("accepted", "web1")
