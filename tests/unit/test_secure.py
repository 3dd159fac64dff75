"""rx.transport.secure: sealed requests, replies and publications with real keys."""

from __future__ import annotations

import dataclasses
import math
import os
import time

import pytest

from rx.transport.codec import MAX_DEPTH, MAX_OBJECTS, decode, encode
from rx.transport.crypto import Aead, Identity, Verifier
from rx.transport.handshake import private_publish_key, publish_key, request_key
from rx.transport.messages import (AesRequest, Job, SecureCommand, parse_request, publication_aad,
                                   publication_signed_bytes, request_aad)
from rx.transport.secure import (BadJob, Malformed, OtherRecipient, Rejected, RequestKeys, StaleSerial, open_publication,
                                 open_reply, open_request, parse_publication, seal_publication, seal_reply, seal_request)

WINDOW = 300.0
SERIAL = 3
JID = "20240102030405060708"


def _job(**kw) -> Job:
    base = dict(jid=JID, fun="test.echo", arg=["hi"], kwarg={}, tgt="*", tgt_type="glob", ts=time.time())
    return Job(**{**base, **kw})


def _req(wire: dict) -> AesRequest:
    req = parse_request(decode(encode(wire)))
    assert isinstance(req, AesRequest)
    return req


def _sealed(secret: bytes, minion_id: str = "web1") -> dict:
    """A `_return` request's wire map, sealed with web1's request key and claiming `minion_id`."""
    return seal_request(request_key(secret, SERIAL, "web1"), minion_id, SERIAL, "_return", {}).to_wire()


def _flip(data: bytes, index: int = 0) -> bytes:
    b = bytearray(data)
    b[index] ^= 1
    return bytes(b)


# ---------------------------------------------------------------- requests (minion -> master)

def test_request_round_trip(secret):
    key = request_key(secret, SERIAL, "web1")
    sealed = seal_request(key, "web1", SERIAL, "_return", {"jid": JID, "return": True})
    assert isinstance(sealed, AesRequest) and (sealed.id, sealed.serial) == ("web1", SERIAL)
    wire = sealed.to_wire()
    got_key, cmd = open_request(secret, SERIAL, _req(wire), time.time(), WINDOW)
    assert got_key == key
    assert cmd.cmd == "_return" and cmd.load == {"jid": JID, "return": True}
    assert b"_return" not in wire["ct"]


def test_request_keys_kept_are_the_keys_derived(secret, monkeypatch):
    """The master keeps the request keys it derived; each is the one request_key derives, per secret and
    serial (a new session secret starts over), and the table is bounded."""
    keys = RequestKeys()
    sealed = seal_request(request_key(secret, SERIAL, "web1"), "web1", SERIAL, "_return", {"jid": JID})
    for _ in range(2):
        assert open_request(secret, SERIAL, sealed, time.time(), WINDOW, keys)[0] == request_key(secret, SERIAL, "web1")
    other = os.urandom(32)
    assert keys.get(other, SERIAL, "web1") == request_key(other, SERIAL, "web1")
    assert keys.get(other, SERIAL + 1, "web1") == request_key(other, SERIAL + 1, "web1")
    with pytest.raises(Rejected):  # a request sealed under the old secret does not open with the new one's key
        open_request(other, SERIAL, sealed, time.time(), WINDOW, keys)
    monkeypatch.setattr(RequestKeys, "KEYS_MAX", 3)
    small = RequestKeys()
    for i in range(10):
        assert small.get(secret, SERIAL, f"m{i}") == request_key(secret, SERIAL, f"m{i}")
        assert len(small._keys) <= 3


def test_request_under_an_old_serial_is_stale(secret):
    wire = _sealed(secret)
    with pytest.raises(StaleSerial) as info:
        open_request(secret, SERIAL + 1, _req(wire), time.time(), WINDOW)
    assert (info.value.theirs, info.value.ours) == (SERIAL, SERIAL + 1)


def test_request_claiming_another_minion_id_is_rejected(secret):
    # web1 holds only its own request key; relabelling its request as web2 must not work
    wire = _sealed(secret)
    with pytest.raises(Rejected):
        open_request(secret, SERIAL, _req({**wire, "id": "web2"}), time.time(), WINDOW)


def test_request_sealed_with_own_key_but_another_id_is_rejected(secret):
    # web1 seals with its key but binds web2's id into the AAD
    wire = _sealed(secret, minion_id="web2")
    with pytest.raises(Rejected):
        open_request(secret, SERIAL, _req(wire), time.time(), WINDOW)


def test_request_with_a_key_from_another_secret_is_rejected(secret):
    wire = _sealed(os.urandom(32))
    with pytest.raises(Rejected):
        open_request(secret, SERIAL, _req(wire), time.time(), WINDOW)


@pytest.mark.parametrize("field", ["ct-first", "ct-last", "nonce"])
def test_tampered_request_is_rejected(secret, field):
    wire = _sealed(secret)
    if field == "nonce":
        wire["nonce"] = _flip(wire["nonce"])
    else:
        wire["ct"] = _flip(wire["ct"], 0 if field == "ct-first" else -1)
    with pytest.raises(Rejected):
        open_request(secret, SERIAL, _req(wire), time.time(), WINDOW)


def _seal_at(secret: bytes, ts: float, cmd: object = None) -> AesRequest:
    key = request_key(secret, SERIAL, "web1")
    plain = encode(cmd if cmd is not None else SecureCommand(cmd="_return", ts=ts, load={}).to_wire())
    nonce, ct = Aead(key).seal(plain, request_aad("web1", SERIAL))
    return AesRequest(id="web1", serial=SERIAL, nonce=nonce, ct=ct)


@pytest.mark.parametrize("offset, ok", [(0, True), (-WINDOW + 1, True), (WINDOW - 1, True),
                                        (-WINDOW - 1, False), (WINDOW + 1, False)])
def test_request_freshness_window(secret, offset, ok):
    now = 1_700_000_000.0
    req = _seal_at(secret, now + offset)
    if ok:
        assert open_request(secret, SERIAL, req, now, WINDOW)[1].cmd == "_return"
    else:
        with pytest.raises(Rejected, match="stale"):
            open_request(secret, SERIAL, req, now, WINDOW)


@pytest.mark.parametrize("ts", [math.nan, math.inf, -math.inf, 1e20, -1.0], ids=repr)
def test_request_with_a_non_finite_or_huge_timestamp_is_refused(secret, ts):
    # the timestamp is range-checked when the command is parsed: the sender is authentic, so it is
    # Malformed (a sealed error), and the command never reaches the freshness check or a handler
    with pytest.raises(Malformed, match="ts"):
        open_request(secret, SERIAL, _seal_at(secret, ts), time.time(), WINDOW)


@pytest.mark.parametrize("plain", [["not", "a", "map"], {"cmd": "_return", "load": {}}, {"cmd": 1, "ts": 1.0, "load": {}}],
                         ids=repr)
def test_authentic_but_malformed_command_is_malformed_not_rejected(secret, plain):
    """It authenticates, so the sender gets a sealed error (Malformed carries the key), not 'auth again'."""
    with pytest.raises(Malformed) as err:
        open_request(secret, SERIAL, _seal_at(secret, 0, cmd=plain), time.time(), WINDOW)
    assert err.value.key == request_key(secret, SERIAL, "web1")


# ---------------------------------------------------------------- replies (master -> minion)

def _request(secret: bytes) -> tuple[bytes, AesRequest]:
    key = request_key(secret, SERIAL, "web1")
    return key, seal_request(key, "web1", SERIAL, "_return", {})


def test_reply_round_trip(secret):
    key, req = _request(secret)
    sealed = decode(encode(seal_reply(key, req, SERIAL, {"ok": True, "n": 1})))
    assert open_reply(key, req, sealed) == {"ok": True, "n": 1}


def test_reply_sealed_for_one_request_does_not_open_for_another(secret):
    # the request nonce is in the reply's associated data: a captured reply cannot answer a later request
    key, first = _request(secret)
    _, second = _request(secret)
    assert first.nonce != second.nonce
    sealed = seal_reply(key, first, SERIAL, {"ok": True, "n": 1})
    with pytest.raises(Rejected):
        open_reply(key, second, sealed)
    assert open_reply(key, first, sealed) == {"ok": True, "n": 1}


@pytest.mark.parametrize("change", [{"id": "web2"}, {"serial": SERIAL + 1}, {"nonce": b"N" * 12}], ids=repr)
def test_reply_for_another_minion_serial_or_request_is_rejected(secret, change):
    key, req = _request(secret)
    other = dataclasses.replace(req, **change)
    with pytest.raises(Rejected):
        open_reply(key, req, seal_reply(key, other, other.serial, {"ok": True}))
    with pytest.raises(Rejected):
        open_reply(key, other, seal_reply(key, req, req.serial, {"ok": True}))


def test_reply_sealed_under_another_serial_than_the_request_is_rejected(secret):
    key, req = _request(secret)
    with pytest.raises(Rejected):
        open_reply(key, req, seal_reply(key, req, SERIAL + 1, {"ok": True}))


def test_request_reflected_as_a_reply_is_rejected(secret):
    # the request and reply directions are bound into the AAD, so one cannot stand in for the other
    key, req = _request(secret)
    with pytest.raises(Rejected):
        open_reply(key, req, {"ok": True, "enc": "aes", "nonce": req.nonce, "ct": req.ct})


@pytest.mark.parametrize("obj", [
    None, [], {"ok": True}, {"ok": False, "error": {"type": "auth", "message": "x"}},
    {"enc": "aes"}, {"enc": "aes", "nonce": b"n" * 12}, {"enc": "aes", "nonce": "n" * 12, "ct": b"x" * 20},
    {"enc": "aes", "nonce": b"n" * 12, "ct": "text"}, {"enc": "aes", "nonce": b"n" * 12, "ct": b"x" * 32},
], ids=repr)
def test_unsealed_or_malformed_reply_is_rejected(secret, obj):
    key, req = _request(secret)
    with pytest.raises(Rejected):
        open_reply(key, req, obj)


# ---------------------------------------------------------------- publications (master -> minions)

def test_publication_round_trip(master, secret):
    pub_key = publish_key(secret, SERIAL)
    job = _job()
    frame = seal_publication(master, pub_key, SERIAL, job)
    pub = parse_publication(frame, Verifier(master.public))
    assert pub.serial == SERIAL
    assert open_publication(pub, pub_key, SERIAL) == job


def test_publication_forged_by_a_publish_key_holder_is_rejected(master, secret):
    # every accepted minion holds the publish key; only the master's signature makes a job real
    rogue_minion = Identity.generate()
    frame = seal_publication(rogue_minion, publish_key(secret, SERIAL), SERIAL, _job(fun="cmd.run", arg=["id"]))
    with pytest.raises(Rejected):
        parse_publication(frame, Verifier(master.public))


@pytest.mark.parametrize("field", ["serial", "nonce", "ct", "sig"])
def test_tampered_publication_fails_the_signature(master, secret, field):
    wire = decode(seal_publication(master, publish_key(secret, SERIAL), SERIAL, _job()))
    wire[field] = wire[field] + 1 if field == "serial" else _flip(wire[field], -1)
    with pytest.raises(Rejected):
        parse_publication(encode(wire), Verifier(master.public))


@pytest.mark.parametrize("frame", [
    b"", b"\xc1", encode([1, 2]), encode({}), encode({"serial": -1, "nonce": b"n" * 12, "ct": b"", "sig": b"s" * 64}),
    encode({"serial": 1, "nonce": b"n" * 12, "ct": b"", "sig": b"s" * 63}),
    encode({"serial": "1", "nonce": b"n" * 12, "ct": b"", "sig": b"s" * 64}),
], ids=["empty", "bad-byte", "list", "empty-map", "negative-serial", "short-sig", "str-serial"])
def test_malformed_publication_frames_are_rejected(master, frame):
    with pytest.raises(Rejected):
        parse_publication(frame, Verifier(master.public))


def test_rotated_publish_key_makes_old_publications_stale(master, secret):
    frame = seal_publication(master, publish_key(secret, SERIAL), SERIAL, _job())
    pub = parse_publication(frame, Verifier(master.public))
    with pytest.raises(StaleSerial) as info:
        open_publication(pub, publish_key(secret, SERIAL + 1), SERIAL + 1)
    assert (info.value.theirs, info.value.ours) == (SERIAL, SERIAL + 1)


def test_publication_under_the_wrong_key_is_rejected(master, secret):
    frame = seal_publication(master, publish_key(secret, SERIAL), SERIAL, _job())
    pub = parse_publication(frame, Verifier(master.public))
    with pytest.raises(Rejected):
        open_publication(pub, publish_key(os.urandom(32), SERIAL), SERIAL)


@pytest.mark.parametrize("plain", [
    {"jid": "../../x", "fun": "test.ping"},
    _job(tgt=["web1", {"a": 1}], tgt_type="list").to_wire(),
    _job(tgt=[["web1"]], tgt_type="list").to_wire(),
    _job(kwarg={1: "x"}).to_wire(),
    _job(tgt_type="sql").to_wire(),
], ids=["bad-jid", "map-in-target-list", "list-in-target-list", "int-kwarg-name", "unknown-target-type"])
def test_signed_publication_with_a_malformed_job_is_a_bad_job(master, secret, plain):
    """It opens, so it is not worth a re-auth (BadJob is not Rejected); the minion drops it."""
    pub_key = publish_key(secret, SERIAL)
    nonce, ct = Aead(pub_key).seal(encode(plain), publication_aad(SERIAL))
    sig = master.sign(publication_signed_bytes(SERIAL, nonce, ct))
    frame = encode({"serial": SERIAL, "nonce": nonce, "ct": ct, "sig": sig})
    pub = parse_publication(frame, Verifier(master.public))
    with pytest.raises(BadJob):
        open_publication(pub, pub_key, SERIAL)


# ---------------------------------------------------------------- private publications (one recipient)

def _private(master: Identity, secret: bytes, to: str = "web1", job: Job | None = None) -> bytes:
    key = private_publish_key(request_key(secret, SERIAL, to))
    return seal_publication(master, key, SERIAL, job or _job(fun="cmd.run", arg=["secret-arg"]), to=to)


def test_private_publication_opens_only_with_the_recipients_key(master, secret):
    frame = _private(master, secret)
    assert b"secret-arg" not in frame
    pub = parse_publication(frame, Verifier(master.public), "web1")
    assert pub.to == "web1"
    assert open_publication(pub, private_publish_key(request_key(secret, SERIAL, "web1")), SERIAL).arg == ["secret-arg"]
    for key in (publish_key(secret, SERIAL), private_publish_key(request_key(secret, SERIAL, "web2")),
                request_key(secret, SERIAL, "web1")):
        with pytest.raises(Rejected):
            open_publication(pub, key, SERIAL)


def test_another_minions_private_publication_is_set_aside_before_its_signature(master, secret):
    frame = _private(master, secret, to="web2")
    with pytest.raises(OtherRecipient):
        parse_publication(frame, Verifier(master.public), "web1")
    with pytest.raises(OtherRecipient):  # even a forgery: nothing is checked for another recipient
        parse_publication(_private(Identity.generate(), secret, to="web2"), Verifier(master.public), "web1")


@pytest.mark.parametrize("change", [{"to": "web2"}, {"to": "web10"}, "drop-to"], ids=repr)
def test_the_recipient_is_signed(master, secret, change):
    """Readdressing a private frame (or passing it off as a broadcast one) breaks the master's signature."""
    wire = decode(_private(master, secret, to="web1"))
    if change == "drop-to":
        del wire["to"]
        recipient = ""
    else:
        wire.update(change)
        recipient = change["to"]
    with pytest.raises(Rejected):
        parse_publication(encode(wire), Verifier(master.public), recipient)


def test_a_broadcast_publication_is_not_a_private_one(master, secret):
    # the same job sealed under the recipient's private key but labelled as a broadcast: the AAD differs
    key = private_publish_key(request_key(secret, SERIAL, "web1"))
    pub = parse_publication(seal_publication(master, key, SERIAL, _job()), Verifier(master.public), "web1")
    assert pub.to == ""
    with pytest.raises(Rejected):
        open_publication(dataclasses.replace(pub, to="web1"), key, SERIAL)


# ---------------------------------------------------------------- every plaintext gets the envelope's structural limits

def _nested_lists(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


BOMBS = {"objects": [[[]] * 100] * (MAX_OBJECTS // 100 + 1), "nesting": _nested_lists(MAX_DEPTH + 1)}


@pytest.mark.parametrize("why", sorted(BOMBS))
def test_request_plaintext_over_the_structural_limits_is_malformed(secret, why):
    with pytest.raises(Malformed, match=why):
        plain = {"cmd": "_return", "ts": time.time(), "load": {"jid": JID, "return": BOMBS[why]}}
        open_request(secret, SERIAL, _seal_at(secret, 0, cmd=plain), time.time(), WINDOW)


@pytest.mark.parametrize("why", sorted(BOMBS))
def test_reply_plaintext_over_the_structural_limits_is_rejected(secret, why):
    key, req = _request(secret)
    with pytest.raises(Rejected, match=why):
        open_reply(key, req, seal_reply(key, req, SERIAL, {"ok": True, "jobs": BOMBS[why]}))


@pytest.mark.parametrize("why", sorted(BOMBS))
def test_publication_plaintext_over_the_structural_limits_is_a_bad_job(master, secret, why):
    """It opens (so it is the master's), but what is inside is refused: dropped, never worth a re-auth."""
    pub_key = publish_key(secret, SERIAL)
    frame = seal_publication(master, pub_key, SERIAL, _job(arg=[BOMBS[why]]))
    pub = parse_publication(frame, Verifier(master.public))
    with pytest.raises(BadJob, match=why):
        open_publication(pub, pub_key, SERIAL)
