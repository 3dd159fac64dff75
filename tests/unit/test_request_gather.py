"""A worker waits a little before reading only while requests come steadily (rx.transport.zmq_transport:
GATHER_SECONDS): a burst such as a 50-minion ping, or a request after a quiet spell, is read at once."""

from __future__ import annotations

from rx.transport.zmq_transport import STEADY_REQUESTS, STEADY_SECONDS, _Steady


def _after(windows: list[tuple[float, int]]) -> list[bool]:
    """Feed `count` requests, then ask at time `t`, for each (t, count); what `now` said each time."""
    s, said = _Steady(), []
    for t, count in windows:
        s.count += count
        said.append(s.now(t))
    return said


def test_a_steady_stream_gathers_and_a_quiet_spell_ends_it():
    w = STEADY_SECONDS
    assert _after([(w, STEADY_REQUESTS), (2 * w, STEADY_REQUESTS), (2.5 * w, 0)]) == [True, True, True]
    assert _after([(w, STEADY_REQUESTS), (10 * w, 1)]) == [True, False]  # quiet for nine windows


def test_bursts_and_slow_streams_do_not():
    w = STEADY_SECONDS
    assert _after([(w, STEADY_REQUESTS - 1)]) == [False]  # a ping to fewer minions than the threshold
    assert _after([(w, 10 * STEADY_REQUESTS), (5 * w, 10 * STEADY_REQUESTS)]) == [True, False]  # counted over 4 windows
    assert _after([(0.5 * w, 0)]) == [False]
