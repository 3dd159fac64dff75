"""rx.client.output: outputters turn {minion: return} into text."""

from __future__ import annotations

import ast
import io
import json
import math

import pytest
import yaml

from rx.client.output import FORMATTERS, OUTPUTTERS, out_json, out_nested, out_raw, out_yaml, render, use_color

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
