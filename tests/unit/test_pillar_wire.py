"""The `_pillar` request and reply on the wire: typed, strict, and the request names no other minion unchecked."""

from __future__ import annotations

import pytest

from rx.transport.errors import ProtocolError
from rx.transport.pillarmsgs import PillarReply, PillarRequest


@pytest.mark.parametrize("wire, expect", [
    ({"grains": {"os": "Debian"}}, PillarRequest({"os": "Debian"})),
    ({"grains": {}, "pillarenv": "dev"}, PillarRequest({}, "dev")),
    ({"grains": {}, "pillarenv": "", "id": "web1"}, PillarRequest({}, "", "web1")),
])
def test_requests(wire, expect):
    assert PillarRequest.from_wire(wire) == expect
    assert PillarRequest.from_wire(expect.to_wire()) == expect


@pytest.mark.parametrize("wire, field", [
    ([], ""),
    ({}, "grains"),
    ({"grains": []}, "grains"),
    ({"grains": {1: "x"}}, "grains"),
    ({"grains": {}, "pillarenv": "../base"}, "pillarenv"),
    ({"grains": {}, "pillarenv": "/etc"}, "pillarenv"),
    ({"grains": {}, "pillarenv": ".hidden"}, "pillarenv"),
    ({"grains": {}, "pillarenv": "a\x00b"}, "pillarenv"),
    ({"grains": {}, "pillarenv": "x" * 65}, "pillarenv"),
    ({"grains": {}, "pillarenv": 3}, "pillarenv"),
    ({"grains": {}, "id": "../m2"}, "id"),
    ({"grains": {}, "id": ""}, "id"),
    ({"grains": {}, "id": 5}, "id"),
])
def test_bad_requests_name_the_field(wire, field):
    with pytest.raises(ProtocolError) as err:
        PillarRequest.from_wire(wire)
    assert err.value.field == field


def test_replies():
    assert PillarReply.from_wire({"ok": True, "pillar": {"a": {"b": [1]}}}) == PillarReply({"a": {"b": [1]}})
    kept = PillarReply({"a": 1}, "base:a.sls line 2: Jinja syntax error")
    assert PillarReply.from_wire(kept.to_wire()) == kept
    for bad in ({"ok": True}, {"ok": False, "pillar": {}}, {"ok": True, "pillar": [1]}, {"ok": True, "pillar": {1: 2}},
                {"ok": True, "pillar": {}, "error": 3}):
        with pytest.raises(ProtocolError):
            PillarReply.from_wire(bad)
