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


NETWORK_MAX_OBJECTS = 256
"""Most msgpack objects an unauthenticated envelope may hold (`_auth` has ~15, a sealed request ~11).
Checked before decoding: a 16 MB frame of nested empty arrays passes every per-container limit yet
costs seconds of CPU and a gigabyte of memory to decode."""


def objects_within(frame: bytes, cap: int) -> bool:
    """True if `frame` is at most one well-formed msgpack value of at most `cap` objects.

    A header-only scan: string, binary and ext payloads are skipped by their length, so the cost is
    O(min(objects, cap)) whatever the frame's size.
    """
    view = memoryview(frame)
    end = len(view)
    pos, todo, seen = 0, 1, 0
    while todo:
        if pos >= end:
            return False
        b = view[pos]
        pos += 1
        todo -= 1
        seen += 1
        if seen > cap:
            return False
        if b <= 0x7F or b >= 0xE0 or b in (0xC0, 0xC2, 0xC3):
            continue
        if 0x80 <= b <= 0x8F:
            todo += 2 * (b & 0x0F)
        elif 0x90 <= b <= 0x9F:
            todo += b & 0x0F
        elif 0xA0 <= b <= 0xBF:
            pos += b & 0x1F
        elif b in _FIXED:
            pos += _FIXED[b]
        elif b in _SIZED:
            width, extra = _SIZED[b]
            if pos + width > end:
                return False
            pos += width + int.from_bytes(view[pos:pos + width], "big") + extra
        elif b in _CONTAINERS:
            width, per_item = _CONTAINERS[b]
            if pos + width > end:
                return False
            todo += per_item * int.from_bytes(view[pos:pos + width], "big")
            pos += width
        else:
            return False
        if todo > cap:
            return False
    return pos == end


# header byte -> payload bytes after it (numbers, fixext incl. its type byte)
_FIXED = {0xCA: 4, 0xCB: 8, 0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8, 0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8,
          0xD4: 2, 0xD5: 3, 0xD6: 5, 0xD7: 9, 0xD8: 17}
# header byte -> (width of the length field, extra bytes after the length: the ext type byte)
_SIZED = {0xC4: (1, 0), 0xC5: (2, 0), 0xC6: (4, 0), 0xC7: (1, 1), 0xC8: (2, 1), 0xC9: (4, 1),
          0xD9: (1, 0), 0xDA: (2, 0), 0xDB: (4, 0)}
# header byte -> (width of the count field, objects per counted item)
_CONTAINERS = {0xDC: (2, 1), 0xDD: (4, 1), 0xDE: (2, 2), 0xDF: (4, 2)}


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
