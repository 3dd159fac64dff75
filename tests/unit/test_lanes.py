"""Which worker lane a network request waits in (rx.master.handlers.network_lane, messages.looks_sealed)."""

from __future__ import annotations

import pytest

from rx.master.handlers import CLEAR_LANE, REFUSED, SEALED_LANE, network_lane
from rx.master.mworker import LANES
from rx.transport.codec import NETWORK_MAX_CLEAR_BYTES, decode, encode
from rx.transport.messages import AesRequest, ClearRequest, parse_request
from tests.support.flood import dressed_as_sealed

SEALED = encode(AesRequest("web1", 3, b"n" * 12, b"c" * 40).to_wire())
AUTH = encode(ClearRequest("_auth", {"id": "web1"}).to_wire())


@pytest.mark.parametrize("body, lane", [
    ([SEALED], SEALED_LANE),
    ([encode(AesRequest("web1", 3, b"n" * 12, b"c" * (8 << 20)).to_wire())], SEALED_LANE),
    ([AUTH], CLEAR_LANE),
    ([b""], CLEAR_LANE),
    ([b"\x85\xa3enc"], CLEAR_LANE),
    ([encode({"id": "web1", "enc": "aes", "serial": 3, "nonce": b"n" * 12, "ct": b"c"})], CLEAR_LANE),
    ([encode(ClearRequest("_auth", {"pad": "x" * NETWORK_MAX_CLEAR_BYTES}).to_wire())], REFUSED),
    ([b"x" * (NETWORK_MAX_CLEAR_BYTES + 1)], REFUSED),
    ([SEALED, SEALED], CLEAR_LANE),
    ([b"a", b"b"], CLEAR_LANE),
], ids=["sealed", "large-sealed", "auth", "empty", "truncated", "enc-not-first", "large-clear", "large-junk",
        "two-frames", "small-frames"])
def test_network_lane(body, lane):
    assert network_lane(body) == lane


def test_a_clear_request_can_look_sealed_so_the_worker_checks_what_it_parses_to():
    frame = dressed_as_sealed(ClearRequest("_auth", {"id": "web1"}))
    assert network_lane([frame]) == SEALED_LANE
    assert isinstance(parse_request(decode(frame)), ClearRequest)  # handlers.dispatch refuses it


def test_lanes_are_served_local_first_and_only_the_clear_ones_shed():
    assert [bool(lane.shed) for lane in LANES] == [False, False, True, True]
    assert LANES[REFUSED].max_requests == 0
