"""rx.transport.topics: the publish channel's topic layout (what the publisher accepts as a
subscription and where a minion's private jobs go)."""

from __future__ import annotations

import pytest

from rx.transport.topics import BROADCAST, BUCKETS, all_topics, bucket, is_topic, subscriptions


@pytest.mark.parametrize("topic, ok", [
    (b"*", True), (b"@000", True), (b"@fff", True), (b"@a1f", True),
    (b"", False), (b"*x", False), (b"**", False), (b"@", False), (b"@00", False), (b"@0000", False),
    (b"@FFF", False), (b"@g00", False), (b"@0 0", False), (b"x" * 1000, False), (b"\x01*", False),
], ids=repr)
def test_only_rx_topics_are_topics(topic, ok):
    assert is_topic(topic) is ok


def test_a_minion_subscribes_to_broadcast_and_its_bucket():
    assert subscriptions("web1") == (BROADCAST, bucket("web1"))
    assert bucket("web1") == bucket("web1") and is_topic(bucket("web1"))


def test_buckets_spread_ids_and_every_topic_is_listed():
    topics = all_topics()
    assert len(topics) == len(set(topics)) == BUCKETS + 1 and all(map(is_topic, topics))
    used = {bucket(f"minion-{i}") for i in range(10_000)}
    assert len(used) > BUCKETS * 0.9
    # no topic is a prefix of another (a zmq subscription matches by prefix)
    assert {len(t) for t in topics[1:]} == {4} and not any(t.startswith(BROADCAST) for t in topics[1:])
