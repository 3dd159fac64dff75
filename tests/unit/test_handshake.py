"""rx.transport.handshake: the sans-IO auth handshake with real keys on both sides."""

from __future__ import annotations

import math
import os
import time

import pytest

from rx.transport.codec import decode, encode
from rx.transport.crypto import Identity
from rx.transport.keyprint import fingerprint, plain_fingerprint
from rx.transport.handshake import (AuthError, answer_auth, check_auth_request, finish_auth, publish_key, request_key,
                                    start_auth)
from rx.transport.authmsgs import X25519_LOW_ORDER, AuthBody, AuthRequest

WINDOW = 300.0


def _wire(obj):
    return decode(encode(obj))


@pytest.fixture(scope="module")
def minion() -> Identity:
    return Identity.generate()


def _round(master, minion, secret, status="accepted", serial=4, minion_id="web1", publish_port=0):
    """One handshake over the wire format: returns (pending, reply as the minion receives it)."""
    pending = start_auth(minion, minion_id)
    req = check_auth_request(_wire(pending.request.to_wire()), time.time(), WINDOW)
    reply = answer_auth(master, req, status, secret, serial, publish_port=publish_port)
    return pending, _wire(reply.to_wire())


def _resign(master: Identity, reply: dict, body: dict) -> dict:
    raw = encode(body)
    return {**reply, "body": raw, "sig": master.sign(b"rx/auth-reply\0" + raw)}


# ---------------------------------------------------------------- the happy path

def test_accepted_handshake_delivers_the_derived_session_keys(master, minion, secret):
    pending, reply = _round(master, minion, secret, serial=4)
    out = finish_auth(pending, reply, pinned_master_pub=None)
    assert out.status == "accepted" and out.master_pub == master.public
    s = out.session
    assert s is not None
    assert s.serial == 4 and s.master_pub == master.public
    assert s.publish_key == publish_key(secret, 4)
    assert s.request_key == request_key(secret, 4, "web1")
    assert abs(s.master_offset) < 60
    assert s.publish_port == 0  # the master did not say


@pytest.mark.parametrize("port", [1, 4505, 65535])
def test_accepted_handshake_announces_the_publish_port(master, minion, secret, port):
    pending, reply = _round(master, minion, secret, publish_port=port)
    assert AuthBody.from_wire(decode(reply["body"])).publish_port == port
    assert finish_auth(pending, reply, pinned_master_pub=master.public).session.publish_port == port


def test_signed_body_with_an_out_of_range_publish_port_is_refused(master, minion, secret):
    pending, reply = _round(master, minion, secret, publish_port=4505)
    bad = _resign(master, reply, {**decode(reply["body"]), "publish_port": 70000})
    with pytest.raises(AuthError) as info:
        finish_auth(pending, bad, pinned_master_pub=master.public)
    assert info.value.reason == "bad_signature"


def test_pinned_master_key_is_accepted_when_unchanged(master, minion, secret):
    pending, reply = _round(master, minion, secret)
    assert finish_auth(pending, reply, pinned_master_pub=master.public).status == "accepted"


@pytest.mark.parametrize("status", ["pending", "rejected", "denied"])
def test_other_statuses_carry_no_keys(master, minion, secret, status):
    pending, reply = _round(master, minion, secret, status=status, publish_port=4505)
    body = AuthBody.from_wire(decode(reply["body"]))
    assert body.keys_ct == b"" and body.keys_nonce == b"" and body.eph == b"" and body.publish_port == 0
    out = finish_auth(pending, reply, pinned_master_pub=None)
    assert out.status == status and out.session is None


def test_each_auth_uses_a_fresh_ephemeral_key_and_nonce(minion):
    a, b = start_auth(minion, "web1"), start_auth(minion, "web1")
    assert a.request.eph != b.request.eph and a.request.nonce != b.request.nonce


def test_answers_to_the_same_request_use_fresh_ephemeral_keys(master, minion, secret):
    pending = start_auth(minion, "web1")
    r1 = answer_auth(master, pending.request, "accepted", secret, 1)
    r2 = answer_auth(master, pending.request, "accepted", secret, 1)
    assert decode(r1.body)["eph"] != decode(r2.body)["eph"]


# ---------------------------------------------------------------- the minion refuses

def test_changed_master_key_is_refused(master, minion, secret):
    pending, reply = _round(master, minion, secret)
    other = Identity.generate()
    with pytest.raises(AuthError) as info:
        finish_auth(pending, reply, pinned_master_pub=other.public)
    assert info.value.reason == "master_key_changed"


def test_impostor_master_is_refused_by_the_pin(master, minion, secret):
    impostor = Identity.generate()
    pending, _ = _round(master, minion, secret)
    fake = _wire(answer_auth(impostor, pending.request, "accepted", os.urandom(32), 1).to_wire())
    with pytest.raises(AuthError) as info:
        finish_auth(pending, fake, pinned_master_pub=master.public)
    assert info.value.reason == "master_key_changed"


def test_master_finger_is_checked_on_first_contact(master, minion, secret):
    pending, reply = _round(master, minion, secret)
    good = plain_fingerprint(fingerprint(master.public))
    assert finish_auth(pending, reply, None, master_finger=good).status == "accepted"
    bad = plain_fingerprint(fingerprint(Identity.generate().public))
    with pytest.raises(AuthError) as info:
        finish_auth(pending, reply, None, master_finger=bad)
    assert info.value.reason == "master_finger_mismatch"


def test_master_finger_wins_over_the_pin(master, minion, secret):
    """A configured master_finger decides whatever is pinned: the pinned key is refused when it does not
    match it, and a key that matches it replaces a different pin."""
    impostor = Identity.generate()
    finger = plain_fingerprint(fingerprint(master.public))
    pending = start_auth(minion, "web1")
    fake = _wire(answer_auth(impostor, pending.request, "accepted", os.urandom(32), 1).to_wire())
    with pytest.raises(AuthError) as info:
        finish_auth(pending, fake, pinned_master_pub=impostor.public, master_finger=finger)
    assert info.value.reason == "master_finger_mismatch" and "pinned" in str(info.value)
    pending, reply = _round(master, minion, secret)
    out = finish_auth(pending, reply, pinned_master_pub=impostor.public, master_finger=finger)
    assert out.status == "accepted" and out.replaces_pin and out.master_pub == master.public
    pending, reply = _round(master, minion, secret, status="pending")
    assert finish_auth(pending, reply, pinned_master_pub=impostor.public, master_finger=finger).replaces_pin
    pending, reply = _round(master, minion, secret)
    assert not finish_auth(pending, reply, pinned_master_pub=master.public, master_finger=finger).replaces_pin
    assert not finish_auth(pending, reply, pinned_master_pub=None, master_finger=finger).replaces_pin


def test_a_key_matching_master_finger_still_needs_a_valid_signature(master, minion, secret):
    pending, reply = _round(master, minion, secret)
    forged = {**reply, "sig": Identity.generate().sign(b"rx/auth-reply\0" + reply["body"])}
    with pytest.raises(AuthError) as info:
        finish_auth(pending, forged, pinned_master_pub=Identity.generate().public,
                    master_finger=plain_fingerprint(fingerprint(master.public)))
    assert info.value.reason == "bad_signature"


def test_signature_by_another_key_is_refused(master, minion, secret):
    pending, reply = _round(master, minion, secret)
    forged = {**reply, "sig": Identity.generate().sign(b"rx/auth-reply\0" + reply["body"])}
    with pytest.raises(AuthError) as info:
        finish_auth(pending, forged, pinned_master_pub=master.public)
    assert info.value.reason == "bad_signature"


def test_tampered_body_is_refused(master, minion, secret):
    pending, reply = _round(master, minion, secret, status="pending")
    body = decode(reply["body"])
    tampered = {**reply, "body": encode({**body, "status": "accepted"})}
    with pytest.raises(AuthError) as info:
        finish_auth(pending, tampered, pinned_master_pub=master.public)
    assert info.value.reason == "bad_signature"


def test_signed_but_malformed_body_is_refused(master, minion, secret):
    pending, reply = _round(master, minion, secret)
    bad = _resign(master, reply, {**decode(reply["body"]), "status": "promoted"})
    with pytest.raises(AuthError) as info:
        finish_auth(pending, bad, pinned_master_pub=master.public)
    assert info.value.reason == "bad_signature"


def test_reply_to_another_request_is_refused(master, minion, secret):
    first = start_auth(minion, "web1")
    second_pending, second_reply = _round(master, minion, secret)
    with pytest.raises(AuthError) as info:
        finish_auth(first, second_reply, pinned_master_pub=master.public)
    assert info.value.reason == "mismatch"
    assert finish_auth(second_pending, second_reply, master.public).status == "accepted"


def test_reply_for_another_id_is_refused(master, minion, secret):
    pending, reply = _round(master, minion, secret, minion_id="web1")
    bad = _resign(master, reply, {**decode(reply["body"]), "id": "web2"})
    with pytest.raises(AuthError) as info:
        finish_auth(pending, bad, pinned_master_pub=master.public)
    assert info.value.reason == "mismatch"


def test_keys_sealed_to_another_ephemeral_key_cannot_be_opened(master, minion, secret):
    # an eavesdropper replays the minion's id and nonce with its own ephemeral key: the keys go to it,
    # and the real minion cannot open them (nor could anyone without that ephemeral private key)
    pending = start_auth(minion, "web1")
    attacker = start_auth(minion, "web1")
    swapped = AuthRequest(**{**pending.request.__dict__, "eph": attacker.request.eph})
    reply = _wire(answer_auth(master, swapped, "accepted", secret, 1).to_wire())
    with pytest.raises(AuthError) as info:
        finish_auth(pending, reply, pinned_master_pub=master.public)
    assert info.value.reason == "bad_keys"


def test_signed_body_with_garbage_keys_is_refused(master, minion, secret):
    pending, reply = _round(master, minion, secret)
    bad = _resign(master, reply, {**decode(reply["body"]), "keys_ct": b"\0" * 48})
    with pytest.raises(AuthError) as info:
        finish_auth(pending, bad, pinned_master_pub=master.public)
    assert info.value.reason == "bad_keys"


@pytest.mark.parametrize("reply", [None, [], {}, {"ok": True}, {"ok": False, "error": {"type": "auth", "message": "x"}},
                                   {"master_pub": b"m" * 31, "body": b"", "sig": b"s" * 64}], ids=repr)
def test_malformed_reply_is_refused(minion, reply):
    with pytest.raises(AuthError) as info:
        finish_auth(start_auth(minion, "web1"), reply, pinned_master_pub=None)
    assert info.value.reason == "malformed"


# ---------------------------------------------------------------- the master refuses

@pytest.mark.parametrize("offset, ok", [
    (0.0, True), (-WINDOW, True), (WINDOW, True), (-WINDOW - 1, False), (WINDOW + 1, False), (-86400.0, False),
])
def test_auth_timestamp_window(minion, offset, ok):
    now = 1_700_000_000.0
    load = _wire(start_auth(minion, "web1", now=now + offset).request.to_wire())
    if ok:
        assert check_auth_request(load, now, WINDOW).id == "web1"
    else:
        with pytest.raises(AuthError) as info:
            check_auth_request(load, now, WINDOW)
        assert info.value.reason == "stale"


@pytest.mark.parametrize("ts", [math.nan, math.inf, -math.inf, 1e20, -1.0], ids=repr)
def test_auth_non_finite_or_huge_timestamp_is_refused(minion, ts):
    # validly signed over ts, but refused when parsed (a number out of range), before any freshness check
    load = _wire(start_auth(minion, "web1", now=ts).request.to_wire())
    with pytest.raises(AuthError) as info:
        check_auth_request(load, time.time(), WINDOW)
    assert info.value.reason == "malformed" and "ts" in str(info.value)


@pytest.mark.parametrize("field", ["id", "eph", "nonce", "ts"])
def test_auth_request_fields_are_covered_by_the_signature(minion, field):
    load = _wire(start_auth(minion, "web1").request.to_wire())
    changed = {"id": "web2", "eph": os.urandom(32), "nonce": os.urandom(16), "ts": load["ts"] + 1}[field]
    with pytest.raises(AuthError) as info:
        check_auth_request({**load, field: changed}, time.time(), WINDOW)
    assert info.value.reason == "bad_signature"


def test_auth_request_signed_by_another_key_is_refused(minion):
    # claiming someone else's public key without its private key
    victim = Identity.generate()
    load = _wire(start_auth(minion, "web1").request.to_wire())
    with pytest.raises(AuthError) as info:
        check_auth_request({**load, "pub": victim.public}, time.time(), WINDOW)
    assert info.value.reason == "bad_signature"


def _signed_with_eph(minion: Identity, eph: bytes) -> dict:
    """A validly signed `_auth` load carrying `eph` as its ephemeral key."""
    unsigned = AuthRequest(id="web1", pub=minion.public, eph=eph, ts=time.time(), nonce=os.urandom(16), sig=b"\0" * 64)
    return _wire(AuthRequest(**{**unsigned.__dict__, "sig": minion.sign(unsigned.signed_bytes())}).to_wire())


LOW_ORDER_KEYS = sorted(((u | top) % 2**256).to_bytes(32, "little") for u in X25519_LOW_ORDER for top in (0, 1 << 255))


@pytest.mark.parametrize("eph", LOW_ORDER_KEYS, ids=lambda b: b.hex()[:8] + ".." + b.hex()[-4:])
def test_low_order_ephemeral_key_is_refused_when_parsed(minion, eph):
    """All-zero and every other low-order X25519 key (the exchange would give the all-zero secret): a
    clear error naming the field, before any key is filed, never an exception from the crypto library."""
    with pytest.raises(AuthError) as info:
        check_auth_request(_signed_with_eph(minion, eph), time.time(), WINDOW)
    assert info.value.reason == "malformed" and "eph" in str(info.value)


def test_the_low_order_list_is_what_x25519_refuses():
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
    ours = X25519PrivateKey.generate()
    for eph in LOW_ORDER_KEYS:
        with pytest.raises(ValueError):
            ours.exchange(X25519PublicKey.from_public_bytes(eph))
    assert check_auth_request(_signed_with_eph(Identity.generate(), b"\x09" + b"\0" * 31), time.time(), WINDOW)


def test_an_unusable_ephemeral_key_is_an_auth_error_when_answering(master, minion, secret):
    # a request built in-process skips the parse: answering it is still an AuthError, not a crypto exception
    req = AuthRequest(**{**start_auth(minion, "web1").request.__dict__, "eph": b"\0" * 32})
    with pytest.raises(AuthError) as info:
        answer_auth(master, req, "accepted", secret, 1)
    assert "eph" in str(info.value)


@pytest.mark.parametrize("load", [None, [], {}, {"id": "web1"}], ids=repr)
def test_malformed_auth_request_is_refused(load):
    with pytest.raises(AuthError) as info:
        check_auth_request(load, time.time(), WINDOW)
    assert info.value.reason == "malformed"


def test_auth_request_with_a_bad_id_is_malformed(minion):
    load = _wire(start_auth(minion, "../evil").request.to_wire())
    with pytest.raises(AuthError) as info:
        check_auth_request(load, time.time(), WINDOW)
    assert info.value.reason == "malformed"


# ---------------------------------------------------------------- derived session keys

def test_session_keys_are_separated_by_serial_id_and_secret(secret):
    keys = {
        publish_key(secret, 1), publish_key(secret, 2), publish_key(os.urandom(32), 1),
        request_key(secret, 1, "web1"), request_key(secret, 2, "web1"), request_key(secret, 1, "web2"),
    }
    assert len(keys) == 6
    assert all(len(k) == 32 for k in keys)
    assert publish_key(secret, 1) == publish_key(secret, 1)
    assert request_key(secret, 1, "web1") == request_key(secret, 1, "web1")
