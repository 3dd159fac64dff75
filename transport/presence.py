"""Minion presence on the publish channel, sans-IO.

A minion's SUB connection to the publish port sends, besides its two topics, one *presence claim*: a
subscription message that names the minion and proves it holds that minion's session key (a MAC under
its request key).  The publisher never applies it as a topic (nothing is ever published under it); it
counts the claims each live connection holds.  libzmq tells the publisher when a connection ends (an
unsubscription of everything it held), and a reconnecting SUB socket sends its subscriptions again, so
the publisher's table is what is connected now, rebuilt by itself after the publisher or the master
restarts, with no request and no ping.

A claim is `b"!" + serial (8 bytes) + MAC (16 bytes) + id (UTF-8)`, at most 280 bytes.  It is static for
a session (a host on the path could replay it from another connection until the session key rotates:
presence is a liveness report, not an authentication; jobs and returns never depend on it).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from rx.transport.fields import serial_bytes
from rx.transport.ids import MINION_ID_MAX, validate_minion_id

CLAIM_MARK = b"!"
SERIAL_BYTES = 8
MAC_BYTES = 16
CLAIM_MAX_BYTES = len(CLAIM_MARK) + SERIAL_BYTES + MAC_BYTES + MINION_ID_MAX
_HEAD = len(CLAIM_MARK) + SERIAL_BYTES + MAC_BYTES
_LABEL = b"rx/presence\0"


def _mac(request_key: bytes, serial: int, minion_id: str) -> bytes:
    return hmac.new(request_key, _LABEL + serial_bytes(serial) + minion_id.encode(), hashlib.sha256).digest()[:MAC_BYTES]


def claim(request_key: bytes, minion_id: str, serial: int) -> bytes:
    """The presence claim of a minion holding `request_key` (its session's request key) under `serial`."""
    return CLAIM_MARK + serial_bytes(serial) + _mac(request_key, serial, minion_id) + minion_id.encode()


def is_claim(topic: bytes) -> bool:
    """Shaped like a claim (the publisher then checks it with parse_claim and verify)."""
    return topic[:1] == CLAIM_MARK and _HEAD < len(topic) <= CLAIM_MAX_BYTES


@dataclass(frozen=True)
class Claim:
    id: str
    serial: int
    mac: bytes

    def verify(self, secret: bytes) -> bool:
        """Whether the MAC was made with the request key the master's session `secret` gives this id."""
        from rx.transport.handshake import request_key
        return hmac.compare_digest(self.mac, _mac(request_key(secret, self.serial, self.id), self.serial, self.id))


def parse_claim(topic: bytes) -> Claim | None:
    """The claim in a subscription topic, or None if it is not a well-formed one."""
    if not is_claim(topic):
        return None
    try:
        minion_id = topic[_HEAD:].decode()
    except UnicodeDecodeError:
        return None
    if validate_minion_id(minion_id) is not None:
        return None
    serial = int.from_bytes(topic[1:1 + SERIAL_BYTES], "big")
    return Claim(minion_id, serial, topic[1 + SERIAL_BYTES:_HEAD])


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
