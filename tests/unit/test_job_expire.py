"""A job's expiry (issue #9 item 10): what a gathering client asks for by default, and what the master
makes of the request.  Pure arithmetic, table-driven."""

from __future__ import annotations

import pytest

from rx.client.cli import UsageError, _check_options, build_parser
from rx.client.gather import default_job_expire
from rx.transport.messages import JOB_WINDOW, PublishRequest


@pytest.mark.parametrize("timeout, gather_job_timeout, max_wait, expire", [
    (5.0, 3.0, 3600.0, 8.0),   # the defaults: the timeout, then the probe's wait
    (5.0, 3.0, 6.0, 6.0),      # the probe's wait is cut at max_wait
    (5.0, 3.0, 5.0, 5.0),      # max_wait <= timeout: no probe at all
    (5.0, 3.0, 2.0, 5.0),
    (5.0, 0.0, 3600.0, 5.0),   # no probe (a probe's own gather)
    (1.0, 1.0, 3600.0, 2.0),
], ids=["defaults", "cut-at-max-wait", "max-wait-is-timeout", "max-wait-below-timeout", "no-probe", "short"])
def test_a_gathered_job_expires_when_the_client_stops_waiting_for_silent_minions(timeout, gather_job_timeout,
                                                                                  max_wait, expire):
    assert default_job_expire(timeout, gather_job_timeout, max_wait) == expire


@pytest.mark.parametrize("job_expire, expires", [
    (0.0, 0.0),                       # none: only the minions' freshness window
    (2.5, 1000.0 + 2.5),
    (JOB_WINDOW, 1000.0 + JOB_WINDOW),
    (JOB_WINDOW * 10, 1000.0 + JOB_WINDOW),  # capped by the window, past which every minion refuses it anyway
])
def test_the_master_sets_the_expiry_from_the_request_within_the_window(job_expire, expires):
    req = PublishRequest(key="k", tgt="*", fun="test.ping", job_expire=job_expire)
    assert req.expiry(1000.0) == expires


@pytest.mark.parametrize("value, ok", [("0", True), ("2.5", True), ("300", True), ("-1", False), ("300.5", False),
                                       ("nan", False), ("inf", False)])
def test_rx_job_expire_takes_0_to_the_window(value, ok):
    opts = build_parser().parse_args(["--job-expire", value, "*", "test.ping"])
    if ok:
        _check_options(opts)
    else:
        with pytest.raises(UsageError, match="--job-expire"):
            _check_options(opts)
