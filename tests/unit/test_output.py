"""rx.client.output: outputters turn {minion: return} into text."""

from __future__ import annotations

import ast
import io
import json
import math

import pytest
import yaml

from rx.client.output import FORMATTERS, HUMAN, OUTPUTTERS, out_json, out_nested, out_raw, out_yaml, render, use_color
from rx.client.termsafe import CONTROLS, escape_controls

DATA = {
    "web2": {"b": [1, {"c": None}], "a": "multi\nline", "e": {}, "f": []},
    "web1": True,
    "db1": "ERROR: boom",
}


def test_every_outputter_is_registered():
    assert set(OUTPUTTERS) == set(FORMATTERS)
    for name in OUTPUTTERS:
        assert isinstance(render(name, DATA), str)


def test_unknown_outputter():
    with pytest.raises(KeyError):
        render("xml", DATA)


# ---------------------------------------------------------------- json

def test_json_is_one_sorted_document():
    text = out_json(DATA)
    assert json.loads(text) == DATA
    assert list(json.loads(text)) == ["db1", "web1", "web2"]
    assert render("json", DATA) == text


@pytest.mark.parametrize("value, expect", [
    (b"bytes", "bytes"),
    (b"\xff\xfe", "\ufffd\ufffd"),
    ({b"raw-key": 1}, {"raw-key": 1}),
    (Ellipsis, "Ellipsis"),
    (math.nan, "nan"),
    (math.inf, "inf"),
    ([-math.inf, 1.5], ["-inf", 1.5]),
    ({"deep": [{"x": math.nan}]}, {"deep": [{"x": "nan"}]}),
], ids=["bytes", "bad-utf8", "bytes-key", "unknown-type", "nan", "inf", "list-inf", "nested-nan"])
def test_json_stays_valid_for_any_return(value, expect):
    text = out_json({"web1": value})

    def strict(constant):
        raise AssertionError(f"{constant} is not JSON")

    assert json.loads(text, parse_constant=strict) == {"web1": expect}


def test_json_indent():
    assert "\n" not in out_json(DATA, indent=None)
    assert json.loads(out_json(DATA, indent=None)) == DATA


# ---------------------------------------------------------------- yaml and raw

def test_yaml_round_trips():
    assert yaml.safe_load(out_yaml(DATA)) == DATA
    assert not out_yaml(DATA).endswith("\n")


def test_raw_is_one_python_literal_per_minion():
    lines = out_raw(DATA).splitlines()
    assert [ast.literal_eval(line) for line in lines] == [{k: v} for k, v in DATA.items()]


# ---------------------------------------------------------------- nested

def test_nested_layout():
    assert out_nested(DATA) == "\n".join([
        "db1:",
        "    ERROR: boom",
        "web1:",
        "    True",
        "web2:",
        "    ----------",
        "    a:",
        "        multi",
        "        line",
        "    b:",
        "        - 1",
        "        |_",
        "          ----------",
        "          c:",
        "              None",
        "    e:",
        "        {}",
        "    f:",
        "        []",
    ])


def test_nested_has_no_escape_codes_without_colour():
    assert "\033[" not in out_nested(DATA, color=False, status={"db1": "failed"})


@pytest.mark.parametrize("status, code", [("ok", "\033[32m"), ("failed", "\033[31m"), ("missing", "\033[33m")])
def test_nested_colours_minions_by_status(status, code):
    text = out_nested({"web1": True}, color=True, status={"web1": status})
    assert text.splitlines()[0] == f"{code}web1:\033[0m"


# ---------------------------------------------------------------- colour decision

class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


@pytest.mark.parametrize("tty, no_color, force, expect", [
    (True, None, None, True),
    (False, None, None, False),
    (True, "1", None, False),
    (True, "", None, True),  # NO_COLOR only counts when non-empty (no-color.org)
    (False, None, True, True),
    (True, None, False, False),
    (True, "1", True, True),
])
def test_use_color(monkeypatch, tty, no_color, force, expect):
    if no_color is None:
        monkeypatch.delenv("NO_COLOR", raising=False)
    else:
        monkeypatch.setenv("NO_COLOR", no_color)
    assert use_color(_Stream(tty), force=force) is expect


# ---------------------------------------------------------------- control characters (issue #8 item 16)

EVIL = "\x1b]0;pwned\x07\x1b[2J\x1b[1;1Hall good\r\x9b31mfake\u202eevil"


@pytest.mark.parametrize("text, shown", [
    ("plain text, é and 日本", "plain text, é and 日本"),
    ("tab\tand\nnewline", "tab\tand\nnewline"),
    ("windows line\r\nend", "windows line\r\nend"),           # CR before LF cannot hide anything
    ("over\rwrite", "over\\x0dwrite"),                         # a lone CR would overwrite the line
    ("\x1b]0;pwned\x07", "\\x1b]0;pwned\\x07"),                # OSC: retitle the terminal
    ("\x1b[2J\x1b[H", "\\x1b[2J\\x1b[H"),                      # CSI: clear, move the cursor
    ("\x00\x08\x0b\x0c\x0e\x1f", "\\x00\\x08\\x0b\\x0c\\x0e\\x1f"),
    ("del\x7f", "del\\x7f"),
    ("\x9b31m\x9d0;x\x9c\x85", "\\x9b31m\\x9d0;x\\x9c\\x85"),  # C1: 8-bit CSI, OSC, ST, NEL
    ("abc\u202edcba\u202c", "abc\\u202edcba\\u202c"),         # bidi override: text that reads backwards
    ("\u2066isolate\u2069", "\\u2066isolate\\u2069"),
    ("\u200f\u061c", "\u200f\u061c"),                          # marks (not overrides) stay: real RTL text has them
], ids=repr)
def test_escape_controls(text, shown):
    assert escape_controls(text) == shown
    assert not CONTROLS.search(escape_controls(text))


@pytest.mark.parametrize("name", HUMAN)
def test_human_outputters_escape_values_keys_and_ids(name):
    data = {"web1": {EVIL: [EVIL, {"k": EVIL}], "multi": f"{EVIL}\nline 2"}, "web2": EVIL}
    text = render(name, data)
    assert "\x1b" not in text and "\x07" not in text and "\x9b" not in text and "\u202e" not in text
    assert "\r" not in text and "\\x1b]0;pwned\\x07" in text
    assert "\x1b]0;pwned\x07" in render(name, data, escape=False), "escape=False prints them as they are"


def test_colours_are_ours_only():
    text = out_nested({"web1": EVIL}, color=True, status={"web1": "ok"})
    assert text.count("\x1b") == 2 and text.startswith("\033[32mweb1:\033[0m")


@pytest.mark.parametrize("name, load", [
    ("json", json.loads),
    ("jsonl", lambda text: {json.loads(text)["id"]: json.loads(text)["ret"]}),
    ("yaml", yaml.safe_load),
    ("raw", ast.literal_eval),
])
def test_machine_outputters_are_exact_and_terminal_safe(name, load):
    data = {"web1": {EVIL: [EVIL, "\x7f\x00"]}}
    text = render(name, data, escape=True)
    assert load(text) == data
    assert not CONTROLS.search(text.replace("\n", ""))


@pytest.mark.parametrize("minion_id", ["newbie", "web*", "db?", "[x]", "a b;rm -rf ~", "x$(id)", "o'k", "-rf"])
def test_ids_in_printed_rx_key_commands_are_quoted_and_glob_escaped(minion_id):
    """`rx-key -a <id>` in the minion's log: pasted into a shell it names that one key and nothing else."""
    import fnmatch
    import shlex
    from rx.minion.auth import key_arg
    [arg] = shlex.split(key_arg(minion_id))
    assert not arg.startswith("-")
    others = ["web1", "dbx", "x", "a", "newbie2"]
    assert fnmatch.fnmatchcase(minion_id, arg) and not any(fnmatch.fnmatchcase(o, arg) for o in others)
