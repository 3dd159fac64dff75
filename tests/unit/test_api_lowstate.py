"""rx-api's request bodies and lowstates (rx.api.lowstate, sans-IO): what each body type decodes to, what is
refused and with which status, and how a chunk becomes a Low."""

from __future__ import annotations

import json

import pytest

from rx.api.lowstate import (INLINE_JSON_BYTES, INLINE_TEXT_BYTES, MAX_CHUNKS, MAX_DEPTH, Credentials, Low,
                             RequestError, check_shape, chunks, credentials, decode_body, enabled_check, number,
                             parse_inline, parse_low)

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
YAML = "application/x-yaml"

DECODED = [
    (JSON, b'[{"client": "local", "tgt": "*", "fun": "test.ping"}]',
     [{"client": "local", "tgt": "*", "fun": "test.ping"}]),
    ("application/json; charset=utf-8", b'{"a": 1}', {"a": 1}),
    (YAML, b"- client: local\n  tgt: '*'\n  fun: test.ping\n", [{"client": "local", "tgt": "*", "fun": "test.ping"}]),
    ("text/yaml", b"a: [1, 2]", {"a": [1, 2]}),
    ("text/plain", b'{"a": true}', {"a": True}),
    (FORM, b"client=local&tgt=*&fun=test.ping", {"client": "local", "tgt": "*", "fun": "test.ping"}),
    (FORM, b"fun=test.arg&arg=1&arg=two&arg=true", {"fun": "test.arg", "arg": [1, "two", True]}),
    (FORM, b"fun=test.kwarg&arg=one%3D1", {"fun": "test.kwarg", "arg": ["one=1"]}),
    (FORM, b"fun=test.kwarg&kwarg=%7Ba%3A+1%7D", {"fun": "test.kwarg", "kwarg": {"a": 1}}),
    (FORM, b"tgt=a&tgt=b", {"tgt": ["a", "b"]}),
    (FORM, b"mode=0644", {"mode": "0644"}),
    (FORM, b"fun=test.echo&arg=%26a+%5B1%5D%2C+%2Aa", {"fun": "test.echo", "arg": ["&a [1], *a"]}),  # alias: text
    (FORM, b"fun=test.echo&arg=" + b"1%3A" * 200 + b"1", {"fun": "test.echo", "arg": ["1:" * 200 + "1"]}),
    (YAML, b"- 0b" + b"1" * 64, [2 ** 64 - 1]),
    (JSON, b"", None),
]


@pytest.mark.parametrize("ctype,body,expected", DECODED)
def test_bodies_decode_as_salt_api_reads_them(ctype, body, expected):
    assert decode_body(ctype, body) == expected


def test_a_form_is_left_alone_when_it_is_no_lowstate():
    assert decode_body(FORM, b"arg=1&kwarg=x", lowstate=False) == {"arg": "1", "kwarg": "x"}


REFUSED_BODIES = [
    ("application/xml", b"<a/>", 406, "not supported"),
    (None, b"{}", 406, "not supported"),
    (JSON, b"{not json", 400, "not valid JSON"),
    (JSON, b"\xff\xfe", 400, "not UTF-8"),
    (JSON, b'{"a": NaN}', 400, "not valid JSON"),
    (JSON, b'{"a": Infinity}', 400, "not valid JSON"),
    (JSON, b"[" * 100_000 + b"]" * 100_000, 400, ""),
    (JSON, json.dumps({"a": 2 ** 70}).encode(), 400, "out of range"),
    (JSON, b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), 400, "nested deeper"),
    (YAML, b"a: &x [1, 2]\nb: *x\n", 400, "aliases"),
    (YAML, b"when: 2024-01-02\n", 400, "YAML dates"),
    (YAML, b"{1: a}", 400, "keys must be strings"),
    (YAML, b"a: !!binary aGVsbG8=", 400, "bytes value"),
    (YAML, b"a: !!python/object:os.system {}", 400, "not valid YAML"),
    (YAML, b"a: [", 400, "not valid YAML"),
    (YAML, b"a: " + b"9" * 5000, 400, "out of range"),
    (YAML, b"a: " + b"1:" * 20_000 + b"1", 400, "out of range"),  # base 60: quadratic to compute
    (YAML, b"a: 2001-02-30", 400, "not valid YAML"),
    (YAML, b"[" * 5000 + b"]" * 5000, 400, "not valid YAML"),
    (FORM, b"kwarg=%5B1%5D", 400, "kwarg must be a YAML mapping"),
    (FORM, b"&".join(b"k%d=1" % i for i in range(2000)), 400, "form body is not valid"),
]


@pytest.mark.parametrize("ctype,size,inline", [
    (JSON, INLINE_JSON_BYTES, True), (JSON, INLINE_JSON_BYTES + 1, False), ("text/plain", 10_000, True),
    (YAML, INLINE_TEXT_BYTES, True), (YAML, INLINE_TEXT_BYTES + 1, False), (YAML, 10_000, False),
    (FORM, 10_000, False), ("application/xml", 10, True),
])
def test_only_small_or_json_bodies_are_parsed_on_the_event_loop(ctype, size, inline):
    assert parse_inline(ctype, size) is inline


@pytest.mark.parametrize("ctype,body,status,words", REFUSED_BODIES)
def test_bad_bodies_are_refused_with_their_status(ctype, body, status, words):
    with pytest.raises(RequestError) as exc:
        decode_body(ctype, body)
    assert exc.value.status == status and words in exc.value.message


def test_too_many_values_are_refused():
    with pytest.raises(RequestError, match="more than"):
        check_shape([0] * 300_000)


CHUNKS = [
    ({"client": "local"}, [{"client": "local"}]),
    ([{"a": 1}, {"b": 2}], [{"a": 1}, {"b": 2}]),
]


@pytest.mark.parametrize("data,expected", CHUNKS)
def test_chunks(data, expected):
    assert chunks(data) == expected


@pytest.mark.parametrize("data,words", [
    (None, "no lowstate"), ("text", "must be a list"), ([1, 2], "must be a list"), ([], "empty"),
    ([{}] * (MAX_CHUNKS + 1), f"at most {MAX_CHUNKS}"),
])
def test_malformed_lowstates_are_400(data, words):
    with pytest.raises(RequestError) as exc:
        chunks(data)
    assert exc.value.status == 400 and words in exc.value.message


PARSED = [
    ({"client": "local", "tgt": "*", "fun": "test.ping"}, Low("local", "test.ping", "*", "glob")),
    ({"client": "local", "tgt": "web*", "fun": "test.echo", "arg": "hi"}, Low("local", "test.echo", "web*", "glob",
                                                                                 ["hi"])),
    ({"client": "local_async", "tgt": ["a", "b"], "tgt_type": "list", "fun": ["test.ping", "test.echo"],
      "arg": [[], ["x"]]}, Low("local_async", ["test.ping", "test.echo"], ["a", "b"], "list", [[], ["x"]])),
    ({"client": "local", "tgt": "os:Debian", "expr_form": "grain", "fun": "test.ping", "timeout": 3, "token": "t" * 20},
     Low("local", "test.ping", "os:Debian", "grain", options={"timeout": 3})),
    ({"client": "runner", "fun": "jobs.lookup_jid", "jid": "1", "kwarg": {"missing": True}},
     Low("runner", "jobs.lookup_jid", kwarg={"missing": True}, options={"jid": "1"})),
    ({"client": "wheel", "fun": "key.finger", "match": "m1", "username": "u", "password": "p", "eauth": "file"},
     Low("wheel", "key.finger", options={"match": "m1"})),
    ({"client": "local", "tgt": "*", "fun": "test.ping", "arg": None}, Low("local", "test.ping", "*", "glob")),
]


@pytest.mark.parametrize("chunk,expected", PARSED)
def test_parse_low(chunk, expected):
    assert parse_low(chunk) == expected


def test_a_route_can_force_the_client():
    assert parse_low({"client": "local", "tgt": "*", "fun": "test.ping"}, "local_async").client == "local_async"


BAD_CHUNKS = [
    ({"tgt": "*", "fun": "test.ping"}, "unknown client"),
    ({"client": "ssh", "tgt": "*", "fun": "test.ping"}, "unknown client 'ssh'"),
    ({"client": "wheel_async", "fun": "key.list_all"}, "unknown client"),
    ({"client": ["local"], "tgt": "*", "fun": "test.ping"}, "unknown client"),
    ({"client": "local", "tgt": "*"}, "not a function name"),
    ({"client": "local", "tgt": "*", "fun": "os.system('id')"}, "not a function name"),
    ({"client": "local", "tgt": "*", "fun": "__import__"}, "not a function name"),
    ({"client": "runner", "fun": ["jobs.list_jobs"]}, "not a function name"),
    ({"client": "local", "tgt": "*", "fun": []}, "list of functions"),
    ({"client": "local", "fun": "test.ping"}, "tgt: give a target"),
    ({"client": "local", "tgt": " ", "fun": "test.ping"}, "tgt: give a target"),
    ({"client": "local", "tgt": {"a": 1}, "fun": "test.ping"}, "tgt: give a target"),
    ({"client": "local", "tgt": [1], "fun": "test.ping"}, "tgt: give a target"),
    ({"client": "local", "tgt": "*", "tgt_type": "sql", "fun": "test.ping"}, "tgt_type"),
    ({"client": "local", "tgt": "*", "fun": "test.ping", "kwarg": [1]}, "kwarg must be a mapping"),
]


@pytest.mark.parametrize("chunk,words", BAD_CHUNKS)
def test_bad_chunks_are_400(chunk, words):
    with pytest.raises(RequestError) as exc:
        parse_low(chunk)
    assert exc.value.status == 400 and words in exc.value.message


CREDENTIALS = [
    ({"username": "bob", "password": "pw", "eauth": "file"}, Credentials("", "bob", "pw", "file"), True),
    ({"token": "abcdefghijklmnop_-12"}, Credentials("abcdefghijklmnop_-12"), False),
    ({"username": "bob"}, Credentials("", "bob"), False),
    ({}, Credentials(), False),
]


@pytest.mark.parametrize("chunk,expected,login", CREDENTIALS)
def test_credentials(chunk, expected, login):
    assert credentials(chunk) == expected and credentials(chunk).login is login


@pytest.mark.parametrize("chunk,status", [
    ({"token": "short"}, 401), ({"token": "x" * 200}, 401), ({"token": "a b c d e f g h i j k l"}, 401),
    ({"token": 12345}, 400), ({"username": ["bob"]}, 400), ({"password": "p" * 2000}, 400),
])
def test_bad_credentials(chunk, status):
    with pytest.raises(RequestError) as exc:
        credentials(chunk)
    assert exc.value.status == status


def test_a_disabled_client_is_403_and_names_the_setting():
    enabled_check("local", ("local",))
    with pytest.raises(RequestError) as exc:
        enabled_check("wheel", ("local",))
    assert exc.value.status == 403 and "api_enable_clients" in exc.value.message


@pytest.mark.parametrize("value,expected", [(None, None), (3, 3.0), ("2.5", 2.5), ("", None)])
def test_number(value, expected):
    assert number({"t": value}, "t") == expected


@pytest.mark.parametrize("value", [-1, True, "soon", [1], 10 ** 9])
def test_bad_numbers(value):
    with pytest.raises(RequestError) as exc:
        number({"t": value}, "t")
    assert exc.value.status == 400
