"""Field readers for `from_wire`: each checks one field's presence, type, size or range
and raises `ProtocolError` naming it.  Shared by every message module."""

from __future__ import annotations

import math
import struct
from typing import Any

from rx.transport.errors import ProtocolError
from rx.transport.ids import JID_RE, validate_minion_id

MAX_SERIAL = 2**64 - 1
MAX_TIMESTAMP = 2**40
"""Largest timestamp accepted (year ~36,800): anything bigger is nonsense, not a time."""


def serial_bytes(serial: int) -> bytes:
    return struct.pack(">Q", serial)


def as_map(obj: Any, what: str) -> dict:
    if not isinstance(obj, dict):
        raise ProtocolError(f"{what} must be a map, got {type(obj).__name__}")
    return obj


def get(d: dict, key: str, types: type | tuple[type, ...], *, default: Any = ..., size: int | None = None) -> Any:
    """`d[key]` if it has one of `types` (a bool is not an int unless bool is listed)."""
    if key not in d:
        if default is ...:
            raise ProtocolError("missing", key)
        return default
    value = d[key]
    allowed = types if isinstance(types, tuple) else (types,)
    if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
        raise ProtocolError(f"wrong type {type(value).__name__}", key)
    if size is not None and len(value) != size:
        raise ProtocolError(f"must be {size} bytes", key)
    return value


def number(d: dict, key: str, *, low: float = 0.0, high: float = MAX_TIMESTAMP, default: Any = ...) -> float:
    """A finite number in [low, high], as a float (NaN, infinities and huge values are refused)."""
    value = get(d, key, (int, float), default=default)
    if isinstance(value, int) and not low <= value <= high:
        raise ProtocolError(f"must be between {low:g} and {high:g}", key)
    value = float(value)
    if not math.isfinite(value) or not low <= value <= high:
        raise ProtocolError(f"must be a finite number between {low:g} and {high:g}", key)
    return value


def integer(d: dict, key: str, low: int, high: int, *, default: Any = ...) -> int:
    value = get(d, key, int, default=default)
    if not low <= value <= high:
        raise ProtocolError(f"must be {low}-{high}", key)
    return value


def serial(d: dict, key: str = "serial") -> int:
    return integer(d, key, 0, MAX_SERIAL)


def minion_id(d: dict, key: str = "id") -> str:
    value = get(d, key, str)
    why = validate_minion_id(value)
    if why:
        raise ProtocolError(f"minion id {why}", key)
    return value


def str_list(d: dict, key: str, *, default: Any = ..., ids: bool = False) -> list[str]:
    """A list of strings (of valid minion ids with `ids`)."""
    value = get(d, key, list, default=default)
    for i, item in enumerate(value):
        if not isinstance(item, str) or (ids and validate_minion_id(item)):
            raise ProtocolError("must hold " + ("minion ids" if ids else "strings"), f"{key}[{i}]")
    return value


def delimiter(d: dict) -> str:
    value = get(d, "delimiter", str, default=":")
    if not 1 <= len(value) <= 8:
        raise ProtocolError("must be 1-8 characters", "delimiter")
    return value


def check_jid(value: Any, key: str = "jid") -> str:
    if not isinstance(value, str) or not JID_RE.match(value):
        raise ProtocolError("must be a 20-digit job id", key)
    return value
