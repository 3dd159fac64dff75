"""Minion presence on the publish channel, sans-IO.

A minion's SUB connection to the publish port sends, besides its two topics, one *presence claim*: a
subscription message that names the minion and proves it holds that minion's session key (a MAC under
its request key).  The publisher never applies it as a topic (nothing is ever published under it); it
counts the claims each live connection holds.  libzmq tells the publisher when a connection ends (an
unsubscription of everything it held), and a reconnecting SUB socket sends its subscriptions again, so
the publisher's table is what is connected now, rebuilt by itself after the publisher or the master
restarts, with no request and no ping.

A claim is `b"!" + serial (8 bytes) + id tag (8 bytes) + MAC (16 bytes)`, 33 bytes: it fits the publish
port's 64-byte message limit, which keeps what libzmq stores for a flooding connection small.  The id
tag is a hash of the minion id; the publisher finds the id among the accepted keys.  A claim is static
for a session and any serial under the master's session secret is accepted (presence outlives key
rotations), so a host on the path that captured one can replay it, or unsubscribe it, from a connection
of its own for as long as it likes: presence is a liveness report, not an authentication (such a host
can cut a minion's connections anyway), and jobs and returns never depend on it.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from rx.transport.fields import serial_bytes

CLAIM_MARK = b"!"
SERIAL_BYTES = 8
TAG_BYTES = 8
MAC_BYTES = 16
CLAIM_BYTES = len(CLAIM_MARK) + SERIAL_BYTES + TAG_BYTES + MAC_BYTES
_LABEL = b"rx/presence\0"


def id_tag(minion_id: str) -> bytes:
    """The short hash of a minion id a claim carries (the id itself may be 255 bytes)."""
    return hashlib.sha256(b"rx/presence-id\0" + minion_id.encode()).digest()[:TAG_BYTES]


def _mac(request_key: bytes, serial: int, minion_id: str) -> bytes:
    return hmac.new(request_key, _LABEL + serial_bytes(serial) + minion_id.encode(), hashlib.sha256).digest()[:MAC_BYTES]


def claim(request_key: bytes, minion_id: str, serial: int) -> bytes:
    """The presence claim of a minion holding `request_key` (its session's request key) under `serial`."""
    return CLAIM_MARK + serial_bytes(serial) + id_tag(minion_id) + _mac(request_key, serial, minion_id)


def is_claim(topic: bytes) -> bool:
    """Shaped like a claim (the publisher then checks it: parse_claim, find the id, Claim.verify)."""
    return len(topic) == CLAIM_BYTES and topic[:1] == CLAIM_MARK


@dataclass(frozen=True)
class Claim:
    serial: int
    tag: bytes
    mac: bytes

    def verify(self, secret: bytes, minion_id: str) -> bool:
        """Whether `minion_id` (one whose id_tag is this claim's) made it, with the request key the master's
        session `secret` gives it under the claim's serial."""
        from rx.transport.handshake import request_key
        return id_tag(minion_id) == self.tag and hmac.compare_digest(
            self.mac, _mac(request_key(secret, self.serial, minion_id), self.serial, minion_id))


def parse_claim(topic: bytes) -> Claim | None:
    """The claim in a subscription topic, or None if it is not one."""
    if not is_claim(topic):
        return None
    head = len(CLAIM_MARK)
    return Claim(int.from_bytes(topic[head:head + SERIAL_BYTES], "big"),
                 topic[head + SERIAL_BYTES:head + SERIAL_BYTES + TAG_BYTES], topic[-MAC_BYTES:])


@dataclass
class _Held:
    id: str
    count: int
    since: float
    addr: str


class PresenceTable:
    """The verified claims live connections hold, counted (a claim held twice is released twice)."""

    def __init__(self) -> None:
        self._held: dict[bytes, _Held] = {}

    def hold(self, topic: bytes, minion_id: str, now: float, addr: str = "") -> None:
        held = self._held.get(topic)
        if held is None:
            self._held[topic] = _Held(minion_id, 1, now, addr)
        else:
            held.count += 1
            held.addr = addr or held.addr

    def release(self, topic: bytes) -> bool:
        """Forget one holder of `topic`; False if nobody held it (nothing changed)."""
        held = self._held.get(topic)
        if held is None:
            return False
        held.count -= 1
        if held.count <= 0:
            del self._held[topic]
        return True

    def snapshot(self) -> dict[str, dict]:
        """`{id: {"since", "addr", "connections"}}` of every minion holding a claim now."""
        out: dict[str, dict] = {}
        for held in self._held.values():
            entry = out.get(held.id)
            if entry is None:
                out[held.id] = {"since": held.since, "addr": held.addr, "connections": held.count}
            else:
                entry["since"] = min(entry["since"], held.since)
                entry["connections"] += held.count
        return out
