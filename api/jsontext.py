"""JSON that is always valid, whatever a minion returned (pure): what rx-api writes in answers and events.

A minion's return or event may hold bytes, sets, msgpack keys that are not strings, or NaN/Infinity, none of
which JSON has a form for; browsers and `json.loads` reject `NaN`.  Output is ASCII only (as salt-api writes
it), so no line separator can reach an SSE `data:` line.
"""

from __future__ import annotations

import json
import math
from typing import Any


def plain(value: Any) -> Any:
    """What JSON cannot carry as is: bytes as text (invalid UTF-8 replaced), sets and tuples as lists,
    anything else as its repr."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return repr(value)


def sanitized(value: Any) -> Any:
    """`value` with every mapping key a string and every float finite (else its text)."""
    if isinstance(value, dict):
        return {k if isinstance(k, str) else str(plain(k) if isinstance(k, (bytes, bytearray)) else k):
                sanitized(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [sanitized(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def dumps(value: Any) -> str:
    """`value` as JSON; the fast path first, the sanitized copy only when that fails."""
    try:
        return json.dumps(value, default=plain, allow_nan=False)
    except (TypeError, ValueError):
        return json.dumps(sanitized(value), default=plain, allow_nan=False)
