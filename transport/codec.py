"""msgpack codec with named size limits.

Decoding never raises anything but `DecodeError`, so a malformed frame from the
network is one error value for the caller to log and drop.
"""

from __future__ import annotations

import threading
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


MAX_OBJECTS = 500_000
"""Most msgpack objects (scalars and containers) one document may hold: every decoded plaintext,
reply, publication and local request.  Room for a 100,000-entry map or list; the costliest document
within it (nested empty arrays) takes ~0.17 s and ~30 MB to decode, where 16 MB of them used to take
seconds and a gigabyte.  Checked before decoding, like MAX_DEPTH."""
NETWORK_MAX_OBJECTS = 256
"""Most objects an unauthenticated envelope may hold (`_auth` has ~15, a sealed request ~11)."""
NETWORK_MAX_CLEAR_BYTES = 4096
"""Largest clear (unauthenticated) request taken from the network: an `_auth` is under 1 KB; only a
sealed request, whose ciphertext opens under a minion's key, may use the whole frame."""

_IS_CONTAINER_HEAD = bytes(int(0x80 <= b <= 0x9F or 0xDC <= b <= 0xDF) for b in range(256))
"""Translation table marking the bytes that can start a container (fixmap, fixarray, array/map 16/32)."""


def check_structure(frame: bytes, max_objects: int, max_depth: int = MAX_DEPTH) -> int:
    """The number of objects in `frame`; DecodeError unless it is exactly one msgpack value of at most
    `max_objects` objects nested at most `max_depth` deep.  Reads headers only (string, binary and ext
    payloads are skipped by their length), so a bomb costs O(min(objects, max_objects)) and no memory."""
    if max_objects < 1:
        raise DecodeError(f"more than {max_objects} objects")
    data = frame if isinstance(frame, bytes) else bytes(frame)
    end = len(data)
    pos, left, announced = 0, 1, 1
    stack: list[int] = []  # objects still to read in each enclosing container
    while True:
        if not left:
            if not stack:
                break
            left = stack.pop()
            continue
        if pos >= end:
            raise DecodeError("truncated msgpack")
        b = data[pos]
        pos += 1
        left -= 1
        if b <= 0x7F or b >= 0xE0 or b in (0xC0, 0xC2, 0xC3):
            continue
        if b <= 0x9F:
            n = b & 0x0F if b >= 0x90 else 2 * (b & 0x0F)
        elif b <= 0xBF:
            pos += b & 0x1F
            continue
        elif b in _FIXED:
            pos += _FIXED[b]
            continue
        elif b in _SIZED:
            width, extra = _SIZED[b]
            pos += width + int.from_bytes(data[pos:pos + width], "big") + extra
            continue
        elif b in _CONTAINERS:
            width, per_item = _CONTAINERS[b]
            n = per_item * int.from_bytes(data[pos:pos + width], "big")
            pos += width
        else:
            raise DecodeError(f"invalid msgpack byte 0x{b:02x}")
        if len(stack) >= max_depth:
            raise DecodeError(f"nesting deeper than {max_depth}")
        announced += n
        if announced > max_objects:
            raise DecodeError(f"more than {max_objects} objects")
        if n:
            stack.append(left)
            left = n
    if pos != end:
        raise DecodeError("truncated msgpack" if pos > end else "trailing bytes after the msgpack value")
    return announced


# header byte -> payload bytes after it (numbers, fixext incl. its type byte)
_FIXED = {0xCA: 4, 0xCB: 8, 0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8, 0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8,
          0xD4: 2, 0xD5: 3, 0xD6: 5, 0xD7: 9, 0xD8: 17}
# header byte -> (width of the length field, extra bytes after the length: the ext type byte)
_SIZED = {0xC4: (1, 0), 0xC5: (2, 0), 0xC6: (4, 0), 0xC7: (1, 1), 0xC8: (2, 1), 0xC9: (4, 1),
          0xD9: (1, 0), 0xDA: (2, 0), 0xDB: (4, 0)}
# header byte -> (width of the count field, objects per counted item)
_CONTAINERS = {0xDC: (2, 1), 0xDD: (4, 1), 0xDE: (2, 2), 0xDF: (4, 2)}


_packers = threading.local()
PACKER_KEEP_BYTES = 1 << 20
"""A packer whose last document was larger is dropped (its buffer grew to that size and would stay)."""


def encode(obj: Any) -> bytes:
    """Serialise with strict types: unknown Python types are an error, not pickled.  One packer per thread is
    kept (msgpack.packb makes a new one, with a new buffer, each call: 1.6 µs for a return's map, 0.9 reused)."""
    packer = getattr(_packers, "packer", None)
    if packer is None:
        packer = _packers.packer = msgpack.Packer(use_bin_type=True)
    out = packer.pack(obj)  # the packer starts over after an error too
    if len(out) > PACKER_KEEP_BYTES:
        _packers.packer = None
    return out


def _surely_within(frame: bytes, max_objects: int) -> bool:
    """True when the structure check cannot fail, so the usual small frame skips it (one C-speed byte
    count): every object takes at least one byte, and every nesting level a byte that could start a
    container."""
    return len(frame) <= max_objects and bytes(frame).translate(_IS_CONTAINER_HEAD).count(1) <= MAX_DEPTH


def decode(frame: bytes, *, max_bytes: int = MAX_FRAME_BYTES, max_objects: int = MAX_OBJECTS) -> Any:
    """Parse one msgpack document within the size, object and depth limits; anything malformed,
    oversized, too large in objects, too deep or trailing is a DecodeError."""
    if not isinstance(frame, (bytes, bytearray, memoryview)):
        raise DecodeError(f"frame is {type(frame).__name__}, not bytes")
    if len(frame) > max_bytes:
        raise DecodeError(f"frame of {len(frame)} bytes exceeds the {max_bytes}-byte limit")
    if not _surely_within(frame, max_objects):
        check_structure(frame, max_objects)
    try:
        return msgpack.unpackb(
            frame, raw=False, strict_map_key=True, use_list=True,
            max_str_len=MAX_STR_BYTES, max_bin_len=MAX_BIN_BYTES,
            max_array_len=MAX_ARRAY_LEN, max_map_len=MAX_MAP_LEN, max_ext_len=0,
        )
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError,
            UnicodeDecodeError, RecursionError) as exc:
        raise DecodeError(f"malformed msgpack: {exc.__class__.__name__}: {exc}") from None
