"""rx.minion.auth.busy_delay: the wait after a "busy" answer to `_auth` starts under a second, doubles its ceiling
with each busy answer in a row, and never exceeds BUSY_RETRY_CAP, so a minion in a storm of thousands backs off
while one facing a flood still asks every few seconds."""

from __future__ import annotations

import random

import pytest

from rx.minion.auth import BUSY_RETRY_CAP, BUSY_RETRY_MAX, BUSY_RETRY_MIN, busy_delay


@pytest.mark.parametrize("busy, ceiling", [(1, BUSY_RETRY_MAX), (2, 2 * BUSY_RETRY_MAX), (3, 4 * BUSY_RETRY_MAX),
                                           (4, BUSY_RETRY_CAP), (50, BUSY_RETRY_CAP), (10_000, BUSY_RETRY_CAP)])
def test_the_wait_stays_between_the_minimum_and_a_doubling_capped_ceiling(busy, ceiling):
    random.seed(busy)
    waits = [busy_delay(busy) for _ in range(2000)]
    assert min(waits) >= BUSY_RETRY_MIN and max(waits) <= ceiling
    assert max(waits) > ceiling * 0.9, "the whole range is used (spread, not one instant for every minion)"
