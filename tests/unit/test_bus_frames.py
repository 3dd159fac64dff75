"""The master's event bus messages (rx.transport.zmq_events): one event [tag, data], or a batch of a job's
returns in three frames [prefix, count, [suffix, data, ...]]; every subscriber takes them apart the same way,
skipping what is malformed (one bad event never hides the others)."""

from __future__ import annotations

import pytest

from rx.transport.codec import encode
from rx.transport.zmq_events import _events, batch_count, batch_frames

RET = "rx/job/J1/ret/"
ONE, TWO = {"id": "web1", "return": 1}, {"id": "web2", "return": [2]}


def _batch(parts: list) -> list[bytes]:
    return [RET.encode(), str(len(parts) // 2).encode(), encode(parts)]


@pytest.mark.parametrize("frames, events", [
    ([b"rx/auth", encode({"id": "m"})], [("rx/auth", {"id": "m"})]),
    (batch_frames(RET, [("web1", encode(ONE)), ("web2", encode(TWO))]), [(RET + "web1", ONE), (RET + "web2", TWO)]),
    (_batch(["web1", encode(ONE), "web2"]), []),  # odd: not pairs
    (_batch(["web1", encode([1]), "web2", encode(TWO)]), [(RET + "web2", TWO)]),  # data not a map
    (_batch(["web1", b"\xc1", "web2", encode(TWO)]), [(RET + "web2", TWO)]),  # data not msgpack
    (_batch([7, encode(ONE), "web2", encode(TWO)]), [(RET + "web2", TWO)]),  # suffix not a string
    (_batch(["web1", ONE]), []),  # data inline, not its own document
    ([RET.encode(), b"2", b"\xc1"], []),
    ([RET.encode(), b"", encode(["web1", encode(ONE)])], []),  # no count
    ([RET.encode(), b"1", encode({"web1": 1})], []),
    ([b"rx/x", encode(ONE), b"", b""], []),
    ([b"rx/sync/abc", encode({})], []),
])
def test_events_of_a_bus_message(frames, events):
    assert _events(frames) == events


@pytest.mark.parametrize("frames, count, n", [
    (3, b"64", 64), (3, b"1", 1), (2, b"64", 1), (3, b"", 1), (3, b"-3", 1), (3, b"9" * 7, 1), (3, b"12a", 1),
])
def test_batch_count(frames, count, n):
    assert batch_count(frames, count) == n
