"""Text from minions made safe to print for a person: terminal control characters become visible escapes.

A minion's return, key id or error text is printed by `rx`, `rx-run`, `rx-key` and `rx-call`; raw, an
escape sequence in it could retitle or clear the operator's terminal, move the cursor over other
output, or (on some terminals) answer back as if typed.  The human outputters escape C0 controls
except newline and tab (a carriage return only when it does not end a line, so CRLF text stays
readable), DEL, C1 controls (which include the 8-bit CSI and OSC introducers) and the Unicode
bidirectional embeddings, overrides and isolates (which reorder how a line reads).  An escape
sequence cannot start once its ESC is shown as `\\x1b`.  The machine outputters (json, jsonl, yaml,
raw) already escape these themselves and stay exact.
"""

from __future__ import annotations

import re

CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]|\r(?!\n)")


def _visible(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    """`text` with every control character CONTROLS matches written as `\\xNN` or `\\uNNNN`."""
    return CONTROLS.sub(_visible, text)
