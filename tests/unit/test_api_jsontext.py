"""rx.api.jsontext: whatever a minion returns, rx-api writes JSON that strict parsers accept."""

import json

import pytest

from rx.api.jsontext import dumps


@pytest.mark.parametrize("value, expected", [
    ({"a": 1}, {"a": 1}),
    ({"x": float("nan"), "y": [float("inf")]}, {"x": "nan", "y": ["inf"]}),
    ({b"k": b"\xff\xfeok"}, {"k": "\ufffd\ufffdok"}),
    ({1: "one", None: 2}, {"1": "one", "null": 2}),
    ({"s": {3}, "t": (1, 2)}, {"s": [3], "t": [1, 2]}),
    ({"o": object}, {"o": repr(object)}),
    ({"line": "a\u2028b é"}, {"line": "a\u2028b é"}),
])
def test_always_strict_json(value, expected):
    text = dumps(value)
    assert text.isascii(), "no raw line separator can reach an SSE data: line"
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard constant {c}")) == expected
