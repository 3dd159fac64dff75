"""msgpack codec with named size limits.

Decoding never raises anything but `DecodeError`, so a malformed frame from the
network is one error value for the caller to log and drop.
"""

from __future__ import annotations

from typing import Any

import msgpack

MAX_FRAME_BYTES = 16 * 1024 * 1024
"""Largest frame accepted from the network (zmq enforces it too, via MAXMSGSIZE)."""
MAX_STR_BYTES = 8 * 1024 * 1024
MAX_BIN_BYTES = 16 * 1024 * 1024
MAX_ARRAY_LEN = 100_000
MAX_MAP_LEN = 100_000
MAX_DEPTH = 64


class DecodeError(ValueError):
    """A frame that is not a well-formed, in-limits msgpack document."""


def encode(obj: Any) -> bytes:
    """Serialise with strict types: unknown Python types are an error, not pickled."""
    return msgpack.packb(obj, use_bin_type=True)


def decode(frame: bytes, *, max_bytes: int = MAX_FRAME_BYTES) -> Any:
    """Parse one msgpack document; anything malformed, oversized or trailing is a DecodeError."""
    if not isinstance(frame, (bytes, bytearray, memoryview)):
        raise DecodeError(f"frame is {type(frame).__name__}, not bytes")
    if len(frame) > max_bytes:
        raise DecodeError(f"frame of {len(frame)} bytes exceeds the {max_bytes}-byte limit")
    try:
        obj = msgpack.unpackb(
            frame, raw=False, strict_map_key=True, use_list=True,
            max_str_len=MAX_STR_BYTES, max_bin_len=MAX_BIN_BYTES,
            max_array_len=MAX_ARRAY_LEN, max_map_len=MAX_MAP_LEN, max_ext_len=0,
        )
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError,
            UnicodeDecodeError, RecursionError) as exc:
        raise DecodeError(f"malformed msgpack: {exc.__class__.__name__}: {exc}") from None
    if _depth(obj) > MAX_DEPTH:
        raise DecodeError(f"nesting deeper than {MAX_DEPTH}")
    return obj


def _depth(obj: Any) -> int:
    deepest = 0
    stack = [(obj, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            deepest = max(deepest, level)
            if level <= MAX_DEPTH:
                stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            deepest = max(deepest, level)
            if level <= MAX_DEPTH:
                stack.extend((v, level + 1) for v in item)
    return deepest
