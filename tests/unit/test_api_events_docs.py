"""docs/api-events.md is generated from rx.api.events and must be current; the rule of who sees every job's
events is the AuthService's rights (a real one, from a policy), not a list of its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from rx.api.events.docs import markdown
from rx.api.events.hub import sees_all_jobs_of
from rx.master.services.auth import PUBLISHER_ACL, ROOT, AuthPolicy, AuthService, Principal

DOCS = Path(__file__).resolve().parents[2] / "docs" / "api-events.md"


def test_docs_are_current():
    assert DOCS.read_text() == markdown(), "docs/api-events.md is out of date: run `make docs`"


POLICY = AuthPolicy(external_auth={"file": {"^filename": "/nonexistent", "ops": [".*", "@runner"],
                                            "auditor": ["@jobs"], "looker": [{"@jobs": ["lookup_jid"]}],
                                            "dev": [".*"], "keys": ["@wheel"]}},
                    publisher_acl={"alice": ["test.*"]})


@pytest.mark.parametrize("who,all_jobs", [
    (ROOT, True),
    (Principal("ops", "file"), True),
    (Principal("auditor", "file"), True),
    (Principal("looker", "file"), True),
    (Principal("dev", "file"), False),      # may run anything on minions, but reads only their own jobs
    (Principal("keys", "file"), False),
    (Principal("nobody", "file"), False),
    (Principal("alice", PUBLISHER_ACL), False),
    (Principal("ops", "pam"), False),       # the same name in a back end that gives them nothing
])
def test_who_sees_every_jobs_events(who, all_jobs):
    assert sees_all_jobs_of(AuthService(POLICY, None))(who) is all_jobs  # type: ignore[arg-type]
