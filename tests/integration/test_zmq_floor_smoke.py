"""bench/zmq_floor.py at a small N: it runs, every connection is made and served, and it reports a figure for
each socket (the figures themselves are the benchmark's business, not asserted here)."""

from __future__ import annotations

from bench import zmq_floor


def test_the_libzmq_floor_benchmark_connects_and_measures_every_socket():
    r = zmq_floor.measure(40)
    assert r["router"]["n"] == 40 and r["xpub"]["n"] == 40
    assert r["kb_per_minion"] == r["router"]["kb_per_connection"] + r["xpub"]["kb_per_connection"]
    assert all(r[k]["after_kb"] > 0 and r[k]["before_kb"] > 0 for k in ("router", "xpub"))
