"""rx.client.cli: turning command-line words into job arguments (split_args / parse_value)."""

from __future__ import annotations

import math

import pytest

from rx.client.cli import parse_value, split_args
from rx.transport.codec import decode, encode

PARSE = [
    # YAML scalars become typed values
    ("1", 1), ("-2", -2), ("0", 0), ("1.5", 1.5), ("-0.25", -0.25), ("true", True), ("false", False),
    ("True", True), ("null", None), ("~", None),
    # everything else stays the text that was typed
    ("hello", "hello"), ("hello world", "hello world"), ("test.ping", "test.ping"), ("web*", "web*"),
    ("", ""), ("   ", "   "), ("\t", "\t"),
    ("'quoted'", "quoted"), ('"1"', "1"),
    ("ls -l /tmp", "ls -l /tmp"), ("a: b: c", "a: b: c"), ("[unclosed", "[unclosed"), ("{a: [}", "{a: [}"),
    ("key: value", {"key": "value"}),
    # numbers YAML 1.1 reads in another base stay as typed: a mode, a time of day, hex
    ("0644", "0644"), ("0755", "0755"), ("10:30", "10:30"), ("0x1f", "0x1f"), ("1_000", "1_000"), ("+5", 5),
    # containers of plain values are kept
    ("[1, two, 3.0]", [1, "two", 3.0]), ("{a: 1, b: [x]}", {"a": 1, "b": ["x"]}), ("[]", []), ("{}", {}),
    # YAML types msgpack cannot carry (or the master would refuse) stay text, at any depth
    ("2024-01-01", "2024-01-01"), ("2024-01-01 10:00:00", "2024-01-01 10:00:00"),
    ("[2024-01-01]", "[2024-01-01]"), ("{when: 2024-01-01}", "{when: 2024-01-01}"),
    ("{1: a}", "{1: a}"), ("[{2: b}]", "[{2: b}]"), ("!!binary aGVsbG8=", "!!binary aGVsbG8="),
    ("!!set {a, b}", "!!set {a, b}"),
    # no code or objects from YAML tags
    ("!!python/object/apply:os.system ['id']", "!!python/object/apply:os.system ['id']"),
    ("!!python/name:os.system", "!!python/name:os.system"),
]


@pytest.mark.parametrize("text, value", PARSE, ids=[repr(t) for t, _ in PARSE])
def test_parse_value(text, value):
    got = parse_value(text)
    assert got == value and type(got) is type(value)
    assert decode(encode(got)) == value  # whatever comes out can be sent


def test_parse_value_nan_is_a_float():
    assert math.isnan(parse_value(".nan"))


SPLIT = [
    ([], [], {}),
    (["a", "b"], ["a", "b"], {}),
    (["1", "two", "x=3"], [1, "two"], {"x": 3}),
    (["x=3", "1"], [1], {"x": 3}),
    (["text=hello world"], [], {"text": "hello world"}),
    (["cmd=ls -l | wc -l"], [], {"cmd": "ls -l | wc -l"}),
    (["a=b=c"], [], {"a": "b=c"}),
    (["url=http://h/?q=1&r=2"], [], {"url": "http://h/?q=1&r=2"}),
    (["key="], [], {"key": ""}),
    (["_private=1"], [], {"_private": 1}),
    (["k=1", "k=2"], [], {"k": 2}),
    (["k=[1, 2]"], [], {"k": [1, 2]}),
    # not identifiers: positional
    (["=x"], ["=x"], {}),
    (["1=2"], ["1=2"], {}),
    (["a b=1"], ["a b=1"], {}),
    (["a-b=1"], ["a-b=1"], {}),
    (["a.b=1"], ["a.b=1"], {}),
    (["--flag=1"], ["--flag=1"], {}),
    (["a==b"], [], {"a": "=b"}),
]


@pytest.mark.parametrize("raw, args, kwargs", SPLIT, ids=[repr(r) for r, _, _ in SPLIT])
def test_split_args(raw, args, kwargs):
    assert split_args(raw) == (args, kwargs)


def test_split_args_keeps_positional_order():
    assert split_args(["3", "k=v", "1", "2"]) == ([3, 1, 2], {"k": "v"})
