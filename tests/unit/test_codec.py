"""rx.transport.codec: strict msgpack with named size limits; every bad frame is a DecodeError."""

from __future__ import annotations

import datetime
import random
import struct

import msgpack
import pytest

from rx.transport import codec
from rx.transport.codec import DecodeError, decode, encode


def _nested(depth: int, kind: str = "list", inner: object = 0) -> object:
    obj = inner
    for i in range(depth):
        obj = [obj] if (kind == "list" or (kind == "mixed" and i % 2)) else {"k": obj}
    return obj


@pytest.mark.parametrize("value", [
    None, True, False, 0, -1, 2**64 - 1, -(2**63), 1.5, -0.0, "", "ünïcödé ✓", b"", b"\x00\xff",
    [], {}, [1, [2, [3]]], {"a": {"b": [1, "x", b"y"]}}, {b"raw-key": 1},
    _nested(codec.MAX_DEPTH), _nested(codec.MAX_DEPTH, "map"), _nested(codec.MAX_DEPTH, "mixed"),
], ids=repr)
def test_round_trip(value):
    assert decode(encode(value)) == value


def test_bytes_and_str_stay_distinct():
    out = decode(encode({"s": "abc", "b": b"abc"}))
    assert type(out["s"]) is str and type(out["b"]) is bytes


def test_tuple_decodes_as_list():
    assert decode(encode((1, (2, 3)))) == [1, [2, 3]]


@pytest.mark.parametrize("value", [object(), {1, 2}, datetime.date(2024, 1, 1), 2**64, -(2**63) - 1, 1j],
                         ids=["object", "set", "date", "2**64", "-(2**63)-1", "complex"])
def test_encode_refuses_unknown_types(value):
    with pytest.raises((TypeError, OverflowError)):
        encode(value)


def test_the_kept_packer_encodes_as_packb_after_an_error_and_after_a_large_document():
    """encode keeps a msgpack Packer per thread: what it writes is what packb writes, whatever came before."""
    small = {"id": "web1", "return": [1, 2.5, None, b"raw"], "ok": True}
    assert encode(small) == msgpack.packb(small, use_bin_type=True)
    with pytest.raises(TypeError):
        encode({"half": "done", "then": object()})
    assert encode(small) == msgpack.packb(small, use_bin_type=True)
    large = {"return": "x" * (codec.PACKER_KEEP_BYTES + 1)}
    assert encode(large) == msgpack.packb(large, use_bin_type=True)
    assert encode(small) == msgpack.packb(small, use_bin_type=True)


@pytest.mark.parametrize("frame", [bytearray(encode({"a": 1})), memoryview(encode({"a": 1}))], ids=type)
def test_decode_accepts_buffer_types(frame):
    assert decode(frame) == {"a": 1}


def _header(code: int, length: int) -> bytes:
    return bytes([code]) + struct.pack(">I", length)


BAD_FRAMES = {
    "not-bytes-str": "\x80",
    "not-bytes-none": None,
    "not-bytes-list": [1],
    "empty": b"",
    "truncated-map": encode({"a": "bcdef"})[:-2],
    "trailing-bytes": encode(1) + encode(2),
    "reserved-byte-0xc1": b"\xc1",
    "int-map-key": encode({1: "a"}),
    "nil-map-key": b"\x81\xc0\x01",
    "array-map-key": b"\x81\x91\x01\x01",
    "invalid-utf8-str": b"\xa2\xff\xfe",
    "ext-type": b"\xd4\x01\x00",
    "timestamp-ext": encode(msgpack.Timestamp(0, 0)),
    "array-over-limit": _header(0xDD, codec.MAX_ARRAY_LEN + 1),
    "map-over-limit": _header(0xDF, codec.MAX_MAP_LEN + 1),
    "array-header-lies": _header(0xDD, 3) + b"\x01",
    "depth-over-limit-list": encode(_nested(codec.MAX_DEPTH + 1)),
    "depth-over-limit-map": encode(_nested(codec.MAX_DEPTH + 1, "map")),
    "depth-over-limit-mixed": encode(_nested(codec.MAX_DEPTH + 1, "mixed")),
    "depth-far-over-stack": b"\x91" * 5000 + b"\xc0",
}


@pytest.mark.parametrize("frame", list(BAD_FRAMES.values()), ids=list(BAD_FRAMES))
def test_malformed_frames_raise_decode_error(frame):
    with pytest.raises(DecodeError):
        decode(frame)


def test_decode_error_is_a_value_error():
    # callers catch DecodeError; it must not escape as something unrelated
    assert issubclass(DecodeError, ValueError)


@pytest.mark.parametrize("size, limit, ok", [(10, 10, True), (11, 10, False), (1, 0, False)])
def test_frame_size_limit(size, limit, ok):
    frame = encode(b"x" * (size - 2)) if size >= 2 else b"\xc0"
    assert len(frame) == size
    if ok:
        assert decode(frame, max_bytes=limit) == b"x" * (size - 2)
    else:
        with pytest.raises(DecodeError, match="exceeds"):
            decode(frame, max_bytes=limit)


def test_default_frame_limit():
    with pytest.raises(DecodeError, match=str(codec.MAX_FRAME_BYTES)):
        decode(b"\xc0" * (codec.MAX_FRAME_BYTES + 1))


def test_string_limit():
    assert len(decode(encode("x" * codec.MAX_STR_BYTES))) == codec.MAX_STR_BYTES
    with pytest.raises(DecodeError):
        decode(encode("x" * (codec.MAX_STR_BYTES + 1)))


def test_bin_limit_under_frame_limit():
    # a bin of MAX_BIN_BYTES does not fit a frame of MAX_FRAME_BYTES with its header: the frame limit wins
    frame = encode(b"x" * codec.MAX_BIN_BYTES)
    with pytest.raises(DecodeError):
        decode(frame)
    assert decode(frame, max_bytes=len(frame)) == b"x" * codec.MAX_BIN_BYTES


@pytest.mark.parametrize("container, n, ok", [
    ("array", codec.MAX_ARRAY_LEN, True), ("array", codec.MAX_ARRAY_LEN + 1, False),
    ("map", codec.MAX_MAP_LEN, True), ("map", codec.MAX_MAP_LEN + 1, False),
])
def test_container_length_limits(container, n, ok):
    value = [None] * n if container == "array" else {str(i): None for i in range(n)}
    frame = encode(value)
    if ok:
        assert len(decode(frame)) == n
    else:
        with pytest.raises(DecodeError):
            decode(frame)


def test_random_garbage_only_ever_raises_decode_error():
    rng = random.Random(0x5EED)
    seeds = [encode({"enc": "aes", "id": "web1", "serial": 3, "nonce": b"n" * 12, "ct": b"c" * 40}),
             encode([1, "two", {"three": [4.0, None, True]}])]
    for i in range(3000):
        if i % 2:
            frame = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 40)))
        else:
            frame = bytearray(rng.choice(seeds))
            for _ in range(rng.randint(1, 4)):
                frame[rng.randrange(len(frame))] = rng.getrandbits(8)
            frame = bytes(frame)
        try:
            decode(frame)
        except DecodeError:
            pass


def _count(obj) -> int:
    if isinstance(obj, dict):
        return 1 + sum(_count(k) + _count(v) for k, v in obj.items())
    if isinstance(obj, list):
        return 1 + sum(_count(x) for x in obj)
    return 1


@pytest.mark.parametrize("obj", [
    0, -1, 127, -32, 255, -129, 70_000, -70_000, 2**33, -2**33, 2**64 - 1, -2**63, 1.5, None, True, False,
    "", "s" * 31, "s" * 32, "s" * 300, "s" * 70_000, b"", b"b" * 300, b"b" * 70_000,
    [], [1] * 15, [1] * 16, [1] * 70_000, {}, {str(i): i for i in range(15)}, {str(i): i for i in range(16)},
    {"enc": "aes", "id": "m1", "serial": 2**40, "nonce": b"n" * 12, "ct": b"c" * 100_000},
    [[1, [2, [3, {"k": [b"x", None]}]]], "tail"],
])
def test_structure_check_counts_objects_exactly(obj):
    frame = msgpack.packb(obj, use_bin_type=True)
    n = _count(obj)
    assert codec.check_structure(frame, n) == n
    with pytest.raises(DecodeError, match=f"more than {n - 1} objects"):
        codec.check_structure(frame, n - 1)
    with pytest.raises(DecodeError, match="trailing"):
        codec.check_structure(frame + b"\x00", n + 5)
    if len(frame) > 1:
        with pytest.raises(DecodeError, match="truncated"):
            codec.check_structure(frame[:-1], n + 5)
    assert decode(frame, max_objects=n) == obj
    with pytest.raises(DecodeError):
        decode(frame, max_objects=n - 1)


@pytest.mark.parametrize("depth", [1, 2, 10, codec.MAX_DEPTH])
@pytest.mark.parametrize("kind", ["list", "map", "mixed"])
@pytest.mark.parametrize("innermost", ["scalar", "empty list"])
def test_structure_check_measures_depth_exactly(depth, kind, innermost):
    value = _nested(depth, kind) if innermost == "scalar" else _nested(depth - 1, kind, inner=[])
    frame = encode(value)
    codec.check_structure(frame, 1000, max_depth=depth)
    with pytest.raises(DecodeError, match=f"nesting deeper than {depth - 1}"):
        codec.check_structure(frame, 1000, max_depth=depth - 1)


@pytest.mark.parametrize("ext", [msgpack.ExtType(1, b"x"), msgpack.ExtType(2, b"x" * 16),
                                 msgpack.ExtType(3, b"x" * 300)])
def test_structure_check_skips_ext_payloads(ext):
    codec.check_structure(msgpack.packb([ext, 1]), 3)


def test_decode_refuses_a_bomb_before_decoding_it():
    bomb = msgpack.packb([[[]] * 150] * 100_000)  # 15 MB, 15 M objects, within every per-container limit
    with pytest.raises(DecodeError, match=f"more than {codec.MAX_OBJECTS} objects"):
        decode(bomb)
    with pytest.raises(DecodeError, match=f"more than {codec.NETWORK_MAX_OBJECTS} objects"):
        decode(bomb, max_objects=codec.NETWORK_MAX_OBJECTS)
    with pytest.raises(DecodeError, match="0xc1"):
        codec.check_structure(b"\xc1", 10)


def test_large_legitimate_documents_decode():
    """A 100,000-entry list and map, a package list of thousands and a 1 MB string fit the default limits."""
    value = {"list": [f"/srv/file-{i}" for i in range(codec.MAX_ARRAY_LEN)],
             "map": {f"k{i}": i for i in range(codec.MAX_MAP_LEN)},
             "pkgs": {f"pkg-{i}": f"1.{i}-1" for i in range(5000)}, "text": "x" * 1_000_000}
    assert decode(encode(value)) == value


def test_small_frames_skip_the_scan_only_when_it_cannot_fail():
    assert decode(encode([1] * 15), max_objects=16) == [1] * 15
    with pytest.raises(DecodeError, match="more than 15 objects"):
        decode(encode([1] * 15), max_objects=15)
    deep = encode(_nested(codec.MAX_DEPTH + 1))  # short frame, but too deep
    assert len(deep) < codec.MAX_OBJECTS
    with pytest.raises(DecodeError, match="nesting deeper"):
        decode(deep)


def test_structure_check_agrees_with_msgpack_on_random_frames():
    """The header scan and msgpack's own parser see the same structure: a frame the permissive parser
    reads in full passes the scan, and a frame the scan passes does not fail the parser on structure."""
    rng = random.Random(0xC0DEC)
    seeds = [encode({"enc": "aes", "id": "web1", "serial": 3, "nonce": b"n" * 12, "ct": b"c" * 40}),
             encode([1, -40, 70_000, 2**40, 1.5, "two", {"three": [4.0, None, True, [[], {}]]}]),
             msgpack.packb([msgpack.ExtType(1, b"x" * 20), "s" * 40, b"b" * 300])]
    for _ in range(5000):
        frame = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 3)):
            frame[rng.randrange(len(frame))] = rng.getrandbits(8)
        frame = bytes(frame[:rng.randint(1, len(frame))] if rng.random() < 0.2 else frame)
        try:
            msgpack.unpackb(frame, raw=True, strict_map_key=False, object_pairs_hook=list,
                            ext_hook=lambda code, data: None)
            parsed = True
        except (msgpack.ExtraData, msgpack.FormatError, msgpack.StackError):
            parsed = False
        except ValueError as exc:  # "incomplete input" is structure; a bad timestamp ext is not
            if "incomplete" not in str(exc):
                continue
            parsed = False
        try:
            codec.check_structure(frame, 10**9, max_depth=10**9)
            scanned = True
        except DecodeError:
            scanned = False
        assert scanned == parsed, frame.hex()
