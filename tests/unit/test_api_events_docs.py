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


def test_open_hub_reads_the_master_config(tmp_path):
    """open_hub without rx-api's AuthService takes the rights from the config itself; nothing is opened."""
    from rx.api.events import open_hub
    from rx.config import load_master_config
    (tmp_path / "master").write_text(
        f"root_dir: {tmp_path}\napi_event_replay: 7\napi_event_client_queue: 11\napi_event_keepalive: 2.5\n"
        "salt_event_tags: true\nexternal_auth:\n  file:\n    ^filename: users\n    ops: ['@jobs']\n    dev: ['.*']\n")
    cfg = load_master_config(str(tmp_path))
    hub = open_hub(cfg)
    assert (hub.replay, hub.client_queue, hub.keepalive, hub.salt_tags) == (7, 11, 2.5, True)
    assert hub.events.pub_path == cfg.event_pub_ipc and hub.pidfile == cfg.pidfile
    assert hub.access(Principal("ops", "file")).all_jobs and not hub.access(Principal("dev", "file")).all_jobs
    assert hub.access(Principal("dev", "file")).owner == "file:dev"
