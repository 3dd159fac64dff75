"""The publish channel's topics, sans-IO.

Every publication travels as two frames, [topic, publication].  A job sealed with the shared
publish key goes under the broadcast topic; a private job goes once per recipient, under that
minion's bucket topic (a short hash of its id).  A minion subscribes to exactly two topics, the
broadcast one and its bucket, so it receives broadcast jobs and the private jobs of the few ids
that share its bucket (it drops those by their recipient before checking anything else).

The topic space is small and fixed (1 + BUCKETS topics), so the publisher can refuse every other
subscription and what it keeps per subscriber stays bounded, whoever connects.
"""

from __future__ import annotations

import hashlib

BROADCAST = b"*"
BUCKETS = 4096
_HEX = frozenset(b"0123456789abcdef")


def bucket(minion_id: str) -> bytes:
    """The topic of `minion_id`'s private publications: "@" and 3 hex digits."""
    n = int.from_bytes(hashlib.sha256(minion_id.encode()).digest()[:2], "big") % BUCKETS
    return b"@%03x" % n


def subscriptions(minion_id: str) -> tuple[bytes, bytes]:
    """The topics a minion subscribes to."""
    return BROADCAST, bucket(minion_id)


def is_topic(topic: bytes) -> bool:
    """Exactly one of rx's topics (the broadcast topic or a bucket), nothing longer or shorter."""
    return topic == BROADCAST or (len(topic) == 4 and topic[:1] == b"@" and all(c in _HEX for c in topic[1:]))


def all_topics() -> list[bytes]:
    """Every topic (what a subscriber that wants to see every publication subscribes to)."""
    return [BROADCAST, *(b"@%03x" % n for n in range(BUCKETS))]
