"""rx.transport.messages, authmsgs and replies: every wire message validates its shape and names the bad field
(the systematic round-trip and malformed-field tables for every class are in test_wire_messages.py)."""

from __future__ import annotations

import pytest

from rx.transport.authmsgs import AuthBody, AuthReply, AuthRequest
from rx.transport.codec import decode, encode
from rx.transport.errors import ErrorKind, ProtocolError, ReplyError
from rx.transport.fields import check_jid
from rx.transport.messages import (MAX_FUNS, MAX_TARGET_LEN, AesRequest, ClearRequest, Job, JobReturn, MinionEvent,
                                   Publication, PublishRequest, SecureCommand, parse_request, publication_aad,
                                   publication_signed_bytes, reply_aad, request_aad)
from rx.transport.replies import Ack, ErrorReply, PublishReply, parse_reply

JID = "20240102030405060708"


def _wire(obj):
    """What the other side sees: the message after a trip through the codec."""
    return decode(encode(obj))


def _without(d: dict, key: str) -> dict:
    return {k: v for k, v in d.items() if k != key}


# ---------------------------------------------------------------- request envelopes

AES = {"enc": "aes", "id": "web1", "serial": 7, "nonce": b"n" * 12, "ct": b"ciphertext"}
CLEAR = {"enc": "clear", "cmd": "_auth", "load": {"x": 1}}


def test_parse_request_clear():
    req = parse_request(_wire(CLEAR))
    assert req == ClearRequest(cmd="_auth", load={"x": 1})
    assert parse_request(_wire(req.to_wire())) == req


def test_parse_request_aes():
    req = parse_request(_wire(AES))
    assert req == AesRequest(id="web1", serial=7, nonce=b"n" * 12, ct=b"ciphertext")
    assert parse_request(_wire(req.to_wire())) == req


BAD_REQUESTS = [
    ("not-a-map", [AES], ""),
    ("none", None, ""),
    ("missing-enc", _without(AES, "enc"), "enc"),
    ("enc-bytes", {**AES, "enc": b"aes"}, "enc"),
    ("unknown-enc", {**AES, "enc": "rsa"}, "enc"),
    ("clear-missing-cmd", _without(CLEAR, "cmd"), "cmd"),
    ("clear-cmd-int", {**CLEAR, "cmd": 1}, "cmd"),
    ("clear-missing-load", _without(CLEAR, "load"), "load"),
    ("clear-load-list", {**CLEAR, "load": [1]}, "load"),
    ("aes-missing-id", _without(AES, "id"), "id"),
    ("aes-id-traversal", {**AES, "id": "../master"}, "id"),
    ("aes-id-slash", {**AES, "id": "a/b"}, "id"),
    ("aes-id-backslash", {**AES, "id": "a\\b"}, "id"),
    ("aes-id-nul", {**AES, "id": "a\0b"}, "id"),
    ("aes-id-dot", {**AES, "id": ".hidden"}, "id"),
    ("aes-id-empty", {**AES, "id": ""}, "id"),
    ("aes-id-256", {**AES, "id": "a" * 256}, "id"),
    ("aes-id-bytes", {**AES, "id": b"web1"}, "id"),
    ("aes-serial-bool", {**AES, "serial": True}, "serial"),
    ("aes-serial-float", {**AES, "serial": 7.0}, "serial"),
    ("aes-serial-str", {**AES, "serial": "7"}, "serial"),
    ("aes-serial-negative", {**AES, "serial": -1}, "serial"),
    ("aes-serial-too-big", {**AES, "serial": 2**64}, "serial"),
    ("aes-nonce-short", {**AES, "nonce": b"n" * 11}, "nonce"),
    ("aes-nonce-long", {**AES, "nonce": b"n" * 13}, "nonce"),
    ("aes-nonce-str", {**AES, "nonce": "n" * 12}, "nonce"),
    ("aes-missing-ct", _without(AES, "ct"), "ct"),
    ("aes-ct-str", {**AES, "ct": "x"}, "ct"),
]


@pytest.mark.parametrize("obj, field", [(o, f) for _, o, f in BAD_REQUESTS], ids=[n for n, _, _ in BAD_REQUESTS])
def test_parse_request_refuses(obj, field):
    with pytest.raises(ProtocolError) as info:
        parse_request(obj)
    assert info.value.field == field
    if field:
        assert str(info.value).startswith(field + ":")


def test_request_aad_binds_id_and_serial():
    base = request_aad("web1", 1)
    assert base == request_aad("web1", 1)
    assert len({base, request_aad("web2", 1), request_aad("web1", 2)}) == 3


def test_reply_aad_binds_id_serial_and_the_request_nonce():
    base = reply_aad("web1", 1, b"n" * 12)
    assert base == reply_aad("web1", 1, b"n" * 12)
    assert len({base, reply_aad("web2", 1, b"n" * 12), reply_aad("web1", 2, b"n" * 12),
                reply_aad("web1", 1, b"N" * 12)}) == 4


def test_request_and_reply_aad_are_separate_directions():
    assert request_aad("web1", 1) != reply_aad("web1", 1, b"")


@pytest.mark.parametrize("obj, field", [
    ({"cmd": "_return", "ts": 1.5, "load": {}}, None),
    ({"cmd": "_return", "ts": 2, "load": {}}, None),
    ({"cmd": "_return", "ts": "1.5", "load": {}}, "ts"),
    ({"cmd": "_return", "ts": True, "load": {}}, "ts"),
    ({"cmd": "_return", "ts": 1.5, "load": []}, "load"),
    ({"ts": 1.5, "load": {}}, "cmd"),
])
def test_secure_command(obj, field):
    if field is None:
        cmd = SecureCommand.from_wire(_wire(obj))
        assert isinstance(cmd.ts, float) and cmd.ts == obj["ts"]
        assert SecureCommand.from_wire(_wire(cmd.to_wire())) == cmd
    else:
        with pytest.raises(ProtocolError) as info:
            SecureCommand.from_wire(obj)
        assert info.value.field == field


# ---------------------------------------------------------------- replies

def test_parse_reply_ok():
    reply = parse_reply({"ok": True, "jid": JID, "minions": ["web1"], "no_grains": []}, PublishReply)
    assert reply == PublishReply(jid=JID, minions=["web1"])
    assert parse_reply({"ok": True}, Ack) == Ack()


def test_error_reply_round_trips_as_reply_error():
    with pytest.raises(ReplyError) as info:
        parse_reply(_wire(ErrorReply(ErrorKind.PERMISSION, "publish refused").to_wire()), PublishReply)
    assert info.value.kind is ErrorKind.PERMISSION
    assert info.value.type == "permission" and info.value.message == "publish refused"


@pytest.mark.parametrize("obj", [
    [], {"ok": 1}, {"ok": "true"}, {}, {"ok": False}, {"ok": False, "error": "boom"},
    {"ok": False, "error": {"type": 1, "message": "m"}}, {"ok": False, "error": {"type": "permission"}},
    {"ok": False, "error": {"type": "no_such_kind", "message": "m"}},
], ids=repr)
def test_parse_reply_refuses_malformed(obj):
    with pytest.raises(ProtocolError):
        parse_reply(obj, Ack)


# ---------------------------------------------------------------- auth

AUTH = {"id": "web1", "pub": b"p" * 32, "eph": b"e" * 32, "ts": 1000.0, "nonce": b"n" * 16, "sig": b"s" * 64}


def test_auth_request_round_trip():
    req = AuthRequest.from_wire(_wire(AUTH))
    assert req.to_wire() == AUTH
    assert AuthRequest.from_wire(_wire({**AUTH, "ts": 1000})).ts == 1000.0


BAD_AUTH = [
    ("pub-31", {**AUTH, "pub": b"p" * 31}, "pub"),
    ("pub-33", {**AUTH, "pub": b"p" * 33}, "pub"),
    ("eph-short", {**AUTH, "eph": b"e"}, "eph"),
    ("nonce-15", {**AUTH, "nonce": b"n" * 15}, "nonce"),
    ("sig-63", {**AUTH, "sig": b"s" * 63}, "sig"),
    ("ts-str", {**AUTH, "ts": "now"}, "ts"),
    ("ts-bool", {**AUTH, "ts": False}, "ts"),
    ("id-traversal", {**AUTH, "id": "../../etc/passwd"}, "id"),
    ("id-missing", _without(AUTH, "id"), "id"),
    ("sig-missing", _without(AUTH, "sig"), "sig"),
]


@pytest.mark.parametrize("obj, field", [(o, f) for _, o, f in BAD_AUTH], ids=[n for n, _, _ in BAD_AUTH])
def test_auth_request_refuses(obj, field):
    with pytest.raises(ProtocolError) as info:
        AuthRequest.from_wire(obj)
    assert info.value.field == field


@pytest.mark.parametrize("field, value", [("id", "web2"), ("pub", b"P" * 32), ("eph", b"E" * 32), ("ts", 1001.0),
                                          ("nonce", b"N" * 16)])
def test_auth_signed_bytes_cover_every_field(field, value):
    base = AuthRequest(**AUTH)
    changed = AuthRequest(**{**AUTH, field: value})
    assert base.signed_bytes() != changed.signed_bytes()
    assert AuthRequest(**{**AUTH, "sig": b"x" * 64}).signed_bytes() == base.signed_bytes()  # sig is not signed


REPLY = {"ok": True, "master_pub": b"m" * 32, "body": b"body", "sig": b"s" * 64}


def test_auth_reply_round_trip():
    assert AuthReply.from_wire(_wire(REPLY)).to_wire() == REPLY


@pytest.mark.parametrize("obj, field", [
    ({**REPLY, "master_pub": b"m" * 31}, "master_pub"),
    ({**REPLY, "sig": b""}, "sig"),
    (_without(REPLY, "body"), "body"),
    ({**REPLY, "body": "text"}, "body"),
])
def test_auth_reply_refuses(obj, field):
    with pytest.raises(ProtocolError) as info:
        AuthReply.from_wire(obj)
    assert info.value.field == field


BODY = AuthBody(status="accepted", id="web1", nonce=b"n" * 16, serial=3, now=5.0, eph=b"e" * 32,
                keys_nonce=b"k" * 12, keys_ct=b"ct", publish_port=4505).to_wire()


def test_auth_body_round_trip():
    assert AuthBody.from_wire(_wire(BODY)).to_wire() == BODY


@pytest.mark.parametrize("port", [0, 1, 4505, 65535])
def test_auth_body_publish_port(port):
    assert AuthBody.from_wire(_wire({**BODY, "publish_port": port})).publish_port == port


def test_auth_body_without_a_publish_port_means_0():
    assert AuthBody.from_wire(_without(BODY, "publish_port")).publish_port == 0


@pytest.mark.parametrize("obj, field", [
    ({**BODY, "status": "maybe"}, "status"),
    ({**BODY, "status": None}, "status"),
    ({**BODY, "serial": -5}, "serial"),
    ({**BODY, "serial": "3"}, "serial"),
    (_without(BODY, "keys_ct"), "keys_ct"),
    ({**BODY, "publish_port": -1}, "publish_port"),
    ({**BODY, "publish_port": 65536}, "publish_port"),
    ({**BODY, "publish_port": "4505"}, "publish_port"),
    ({**BODY, "publish_port": True}, "publish_port"),
])
def test_auth_body_refuses(obj, field):
    with pytest.raises(ProtocolError) as info:
        AuthBody.from_wire(obj)
    assert info.value.field == field


# ---------------------------------------------------------------- publish requests

PUB = {"key": "rootkey", "tgt": "*", "fun": "test.ping"}


@pytest.mark.parametrize("obj, expect", [
    (PUB, dict(tgt="*", fun="test.ping", arg=[], kwarg={}, tgt_type="glob", jid="", user="", timeout=0.0)),
    ({**PUB, "tgt": ["a", "b"], "tgt_type": "list", "arg": [1, "x"], "kwarg": {"k": "v"}, "jid": JID,
      "user": "alice", "timeout": 3},
     dict(tgt=["a", "b"], tgt_type="list", arg=[1, "x"], kwarg={"k": "v"}, jid=JID, user="alice", timeout=3.0)),
    ({**PUB, "fun": ["test.ping", "test.echo"], "arg": [[], ["hi"]]},
     dict(fun=["test.ping", "test.echo"], arg=[[], ["hi"]])),
    ({**PUB, "tgt": "x" * MAX_TARGET_LEN}, dict(tgt="x" * MAX_TARGET_LEN)),
    ({**PUB, "fun": ["test.ping"] * MAX_FUNS, "arg": [[]] * MAX_FUNS}, dict(fun=["test.ping"] * MAX_FUNS)),
    ({**PUB, "fun": "_private._x9"}, dict(fun="_private._x9")),
], ids=["defaults", "all-fields", "multi-fun", "target-at-limit", "funs-at-limit", "underscores"])
def test_publish_request_accepts(obj, expect):
    req = PublishRequest.from_wire(_wire(obj))
    for name, value in expect.items():
        assert getattr(req, name) == value
    assert PublishRequest.from_wire(_wire(req.to_wire())) == req


BAD_PUBLISH = [
    ("tgt-missing", _without(PUB, "tgt"), "tgt"),
    ("tgt-int", {**PUB, "tgt": 5}, "tgt"),
    ("tgt-too-long", {**PUB, "tgt": "x" * (MAX_TARGET_LEN + 1)}, "tgt"),
    ("tgt-list-of-int", {**PUB, "tgt": ["a", 1]}, "tgt"),
    ("fun-missing", _without(PUB, "fun"), "fun"),
    ("fun-no-module", {**PUB, "fun": "ping"}, "fun"),
    ("fun-three-parts", {**PUB, "fun": "test.ping.x"}, "fun"),
    ("fun-traversal", {**PUB, "fun": "../x.y"}, "fun"),
    ("fun-call-syntax", {**PUB, "fun": "test.ping()"}, "fun"),
    ("fun-trailing-newline", {**PUB, "fun": "test.ping\n"}, "fun"),
    ("fun-leading-digit", {**PUB, "fun": "1test.ping"}, "fun"),
    ("fun-empty", {**PUB, "fun": ""}, "fun"),
    ("fun-empty-list", {**PUB, "fun": [], "arg": []}, "fun"),
    ("fun-list-bad-item", {**PUB, "fun": ["test.ping", "bad"], "arg": [[], []]}, "fun"),
    ("fun-list-over-limit", {**PUB, "fun": ["test.ping"] * (MAX_FUNS + 1), "arg": [[]] * (MAX_FUNS + 1)}, "fun"),
    ("tgt-type-unknown", {**PUB, "tgt_type": "sql"}, "tgt_type"),
    ("tgt-type-int", {**PUB, "tgt_type": 1}, "tgt_type"),
    ("jid-short", {**PUB, "jid": "123"}, "jid"),
    ("jid-letters", {**PUB, "jid": "2024010203040506070a"}, "jid"),
    ("jid-trailing-newline", {**PUB, "jid": JID + "\n"}, "jid"),
    ("jid-traversal", {**PUB, "jid": "../../../../etc/x"}, "jid"),
    ("jid-int", {**PUB, "jid": int(JID)}, "jid"),
    ("multi-arg-count", {**PUB, "fun": ["test.ping", "test.echo"], "arg": [[]]}, "arg"),
    ("multi-arg-not-lists", {**PUB, "fun": ["test.ping", "test.echo"], "arg": ["a", "b"]}, "arg"),
    ("arg-map", {**PUB, "arg": {"a": 1}}, "arg"),
    ("kwarg-list", {**PUB, "kwarg": [1]}, "kwarg"),
    ("timeout-str", {**PUB, "timeout": "5"}, "timeout"),
    ("key-missing", _without(PUB, "key"), "key"),
    ("key-bytes", {**PUB, "key": b"rootkey"}, "key"),
]


@pytest.mark.parametrize("obj, field", [(o, f) for _, o, f in BAD_PUBLISH], ids=[n for n, _, _ in BAD_PUBLISH])
def test_publish_request_refuses(obj, field):
    with pytest.raises(ProtocolError) as info:
        PublishRequest.from_wire(obj)
    assert info.value.field == field


@pytest.mark.parametrize("value, ok", [
    (JID, True), ("0" * 20, True), ("1" * 19, False), ("1" * 21, False), (JID + "\n", False), ("\n" + JID, False),
    (" " + JID[1:], False), ("\u0661" * 20, False), (int(JID), False), (None, False), (JID.encode(), False),
], ids=repr)
def test_check_jid(value, ok):
    if ok:
        assert check_jid(value) == value
    else:
        with pytest.raises(ProtocolError) as info:
            check_jid(value)
        assert info.value.field == "jid"


# ---------------------------------------------------------------- publications, jobs, returns, events

PUBLICATION = {"serial": 2, "nonce": b"n" * 12, "ct": b"ct", "sig": b"s" * 64}


def test_publication_round_trip_and_signed_bytes():
    pub = Publication.from_wire(_wire(PUBLICATION))
    assert pub.to_wire() == PUBLICATION
    assert pub.signed_bytes() == publication_signed_bytes(2, b"n" * 12, b"ct")
    assert len({publication_signed_bytes(2, b"n" * 12, b"ct"), publication_signed_bytes(3, b"n" * 12, b"ct"),
                publication_signed_bytes(2, b"N" * 12, b"ct"), publication_signed_bytes(2, b"n" * 12, b"cT")}) == 4
    assert publication_aad(2) != publication_aad(3)


@pytest.mark.parametrize("obj, field", [
    ({**PUBLICATION, "serial": -1}, "serial"),
    ({**PUBLICATION, "serial": 2**64}, "serial"),
    ({**PUBLICATION, "serial": None}, "serial"),
    ({**PUBLICATION, "nonce": b"n"}, "nonce"),
    ({**PUBLICATION, "sig": b"s" * 65}, "sig"),
    (_without(PUBLICATION, "ct"), "ct"),
])
def test_publication_refuses(obj, field):
    with pytest.raises(ProtocolError) as info:
        Publication.from_wire(obj)
    assert info.value.field == field


JOB = {"jid": JID, "fun": "test.echo", "arg": ["hi"], "kwarg": {}, "tgt": "*", "tgt_type": "glob", "ts": 10.0,
       "user": "root"}


def test_job_round_trip():
    job = Job.from_wire(_wire(JOB))
    assert (job.jid, job.fun, job.arg, job.tgt, job.ts, job.user) == (JID, "test.echo", ["hi"], "*", 10.0, "root")
    assert Job.from_wire(_wire(job.to_wire())) == job


@pytest.mark.parametrize("obj, field", [
    ({**JOB, "jid": "nope"}, "jid"),
    (_without(JOB, "jid"), "jid"),
    ({**JOB, "fun": 1}, "fun"),
    ({**JOB, "arg": "hi"}, "arg"),
    (_without(JOB, "tgt_type"), "tgt_type"),
    ({**JOB, "ts": "10"}, "ts"),
])
def test_job_refuses(obj, field):
    with pytest.raises(ProtocolError) as info:
        Job.from_wire(obj)
    assert info.value.field == field


RET = {"jid": JID, "fun": "test.ping", "fun_args": [], "retcode": 0, "success": True, "return": True}


@pytest.mark.parametrize("ret", [True, None, {"a": [1]}, "text", b"bytes"], ids=repr)
def test_job_return_round_trip(ret):
    jr = JobReturn.from_wire(_wire({**RET, "return": ret}))
    assert jr.ret == ret
    assert jr.to_wire() == {**RET, "return": ret}


@pytest.mark.parametrize("obj, field", [
    (_without(RET, "return"), "return"),
    ({**RET, "jid": JID + "\n"}, "jid"),
    ({**RET, "retcode": True}, "retcode"),
    ({**RET, "retcode": "0"}, "retcode"),
    ({**RET, "success": 1}, "success"),
    ({**RET, "fun_args": {}}, "fun_args"),
])
def test_job_return_refuses(obj, field):
    with pytest.raises(ProtocolError) as info:
        JobReturn.from_wire(obj)
    assert info.value.field == field


@pytest.mark.parametrize("tag, ok", [
    ("start", True), ("a/b/c", True), ("x" * 512, True), ("a..b", True), ("v1.2/done", True),
    ("", False), ("x" * 513, False), ("/abs", False), ("..", False), ("a/../b", False), ("a/..", False),
    ("a\nb", False), ("a\0b", False), ("tab\there", False),
], ids=repr)
def test_minion_event_tags(tag, ok):
    obj = {"tag": tag, "data": {"k": 1}}
    if ok:
        assert MinionEvent.from_wire(_wire(obj)) == MinionEvent(tag=tag, data={"k": 1})
    else:
        with pytest.raises(ProtocolError) as info:
            MinionEvent.from_wire(obj)
        assert info.value.field == "tag"


def test_minion_event_data_must_be_a_map():
    with pytest.raises(ProtocolError) as info:
        MinionEvent.from_wire({"tag": "t", "data": [1]})
    assert info.value.field == "data"
