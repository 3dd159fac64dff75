"""rx.transport.tags: which events may travel several in one bus message (a job's returns), and what a
subscriber subscribes to so that it still gets each event it asked for."""

from __future__ import annotations

import pytest

from rx.transport.tags import batch_prefix, job_ret, subscription

JID = "20260101000000000001"


@pytest.mark.parametrize("tag, prefix", [
    (job_ret(JID, "web1"), f"rx/job/{JID}/ret/"),
    (job_ret(JID, "a/b"), f"rx/job/{JID}/ret/"),
    (f"rx/job/{JID}/new", None),
    ("rx/job/", None),
    ("rx/job//ret/x", None),  # no jid
    ("rx/auth", None),
    ("rx/minion/web1/ret/x", None),
    (f"rx/job/{JID}/ret", None),
], ids=repr)
def test_batch_prefix(tag, prefix):
    assert batch_prefix(tag) == prefix


@pytest.mark.parametrize("asked, subscribed", [
    (f"rx/job/{JID}/ret/", f"rx/job/{JID}/ret/"),
    (f"rx/job/{JID}/ret/web", f"rx/job/{JID}/ret/"),    # reaches into the returns: the batch prefix
    (job_ret(JID, "web1"), f"rx/job/{JID}/ret/"),
    (f"rx/job/{JID}/ret", f"rx/job/{JID}/ret"),          # shorter than a batch prefix: gets the batches
    ("rx/job/", "rx/job/"),
    ("rx/", "rx/"),
    ("", ""),
    ("rx/auth", "rx/auth"),
    (f"rx/job/{JID}/new", f"rx/job/{JID}/new"),
], ids=repr)
def test_subscription_gets_every_batch_holding_an_event_asked_for(asked, subscribed):
    assert subscription(asked) == subscribed
    batch = f"rx/job/{JID}/ret/"
    if job_ret(JID, "web1").startswith(asked):  # a return the subscriber wants arrives in a batch under `batch`
        assert batch.startswith(subscribed)
