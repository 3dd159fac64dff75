"""rx.master.services.auth over a real file token store: logins (rate limited), tokens (expiry,
revocation, forgery), the publish check (fail closed), runners and wheel, and the audit lines."""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from rx.master.auth.audit import AuditLog
from rx.master.services.auth import (PUBLISHER_ACL, ROOT, AuthPolicy, AuthService, LoginFailed, LoginLocked,
                                     NotPermitted, Principal, TokenInvalid)
from rx.master.store.base import JobRecord
from rx.master.store.file_tokens import FileTokenStore, token_name
from rx.transport.messages import Job

MINIONS = {"web1", "web2", "db1"}


class Users:
    """A back end for these tests: fixed passwords and groups (the real ones, pam and file, have their own tests)."""

    def __init__(self) -> None:
        self.passwords = {"alice": "pw-a", "bob": "pw-b", "nobody": "pw-n"}
        self.calls = 0

    def authenticate(self, username: str, password: str) -> bool:
        self.calls += 1
        return self.passwords.get(username) == password

    def groups(self, username: str) -> list[str]:
        return ["ops"] if username == "bob" else []


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class Jobs:
    """The job records the probe rule reads (a dict; the job store itself has its own tests)."""

    def __init__(self) -> None:
        self.records: dict[str, JobRecord] = {}

    async def get_job(self, jid: str) -> JobRecord:
        from rx.master.store.errors import UnknownJob
        if jid not in self.records:
            raise UnknownJob(jid)
        return self.records[jid]


async def expand(target: str) -> frozenset[str]:
    import fnmatch
    return frozenset(m for m in MINIONS if fnmatch.fnmatch(m, target))


@pytest.fixture
def svc(tmp_path):
    policy = AuthPolicy(
        external_auth={"test": {"alice": [{"web*": ["test.*"]}, "@jobs"], "ops%": ["grains.item"],
                                "bob": [{"nosuch*": ["test.ping"]}]}},
        publisher_acl={"fred": [{"web1": ["cmd.run"]}], "wilma": [".*"]},
        auth_failures_max=3, auth_lockout_seconds=300.0, token_expire=600.0)
    clock = Clock()
    store = FileTokenStore(tmp_path / "tokens")
    asyncio.run(store.prepare())
    service = AuthService(policy, store, Jobs(), audit=AuditLog(str(tmp_path / "audit")),  # type: ignore[arg-type]
                          backends={"test": Users()}, clock=clock)
    service.clock_ = clock  # type: ignore[attr-defined]
    return service


def audit(tmp_path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "audit").read_text().splitlines()]


def run(coro):
    return asyncio.run(coro)


def test_login_makes_a_salt_api_token(svc, tmp_path):
    token = run(svc.login("test", "alice", "pw-a", source="10.0.0.1"))
    assert set(token.to_salt()) == {"token", "expire", "start", "user", "eauth", "perms"}
    assert token.user == "alice" and token.eauth == "test" and token.expire - token.start == 600.0
    assert token.perms == [{"web*": ["test.*"]}, "@jobs"]
    files = os.listdir(tmp_path / "tokens")
    assert token_name(token.token) in files and token.token not in files  # stored by hash, 0600
    assert os.stat(tmp_path / "tokens" / token_name(token.token)).st_mode & 0o777 == 0o600
    assert run(svc.check_token(token.token)) == Principal("alice", "test", (), "")
    assert audit(tmp_path)[-1] | {"time": ""} == {"time": "", "user": "alice", "eauth": "test", "action": "login",
                                                  "outcome": "allowed", "source": "10.0.0.1"}


def test_wrong_password_unknown_user_and_unknown_back_end_fail_alike(svc):
    for eauth, user, pw in (("test", "alice", "nope"), ("test", "mallory", "pw-a"), ("pam2", "alice", "pw-a")):
        with pytest.raises(LoginFailed, match="authentication failed"):
            run(svc.login(eauth, user, pw))


def test_a_user_without_rights_gets_no_token(svc):
    with pytest.raises(LoginFailed, match="no rights"):
        run(svc.login("test", "nobody", "pw-n"))


def test_groups_give_rights(svc):
    token = run(svc.login("test", "bob", "pw-b"))
    who = run(svc.check_token(token.token))
    assert who.groups == ("ops",)
    run(svc.authorize_publish(who, "*", "glob", "grains.item", sorted(MINIONS), expand=expand))


def test_rate_limit_per_user_and_per_source(svc, tmp_path):
    backend = svc._backends["test"]
    for _ in range(3):
        with pytest.raises(LoginFailed):
            run(svc.login("test", "alice", "bad", source="s1"))
    calls = backend.calls
    with pytest.raises(LoginLocked, match="too many failed logins"):
        run(svc.login("test", "alice", "pw-a", source="s2"))  # the user is locked, whatever the source
    assert backend.calls == calls  # not even checked
    with pytest.raises(LoginLocked):
        run(svc.login("test", "bob", "pw-b", source="s1"))  # and so is the source, for every user
    assert run(svc.login("test", "bob", "pw-b", source="s3")).user == "bob"
    svc.clock_.now += 301
    assert run(svc.login("test", "alice", "pw-a", source="s1")).user == "alice"
    assert [e["outcome"] for e in audit(tmp_path) if e["action"] == "login"] == \
        ["failed", "failed", "failed", "locked", "locked", "allowed", "allowed"]


def test_failures_spread_over_more_than_a_minute_do_not_lock(svc):
    for _ in range(5):
        with pytest.raises(LoginFailed):
            run(svc.login("test", "alice", "bad"))
        svc.clock_.now += 31
    assert run(svc.login("test", "alice", "pw-a")).user == "alice"


def test_expired_forged_revoked_and_malformed_tokens(svc):
    token = run(svc.login("test", "alice", "pw-a")).token
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for bad in (forged, "", "not a token", "x" * 43):
        with pytest.raises(TokenInvalid):
            run(svc.check_token(bad))
    svc.clock_.now += 599
    run(svc.check_token(token))
    svc.clock_.now += 1
    with pytest.raises(TokenInvalid, match="expired"):
        run(svc.check_token(token))
    with pytest.raises(TokenInvalid, match="unknown"):  # removed when found expired
        run(svc.check_token(token))
    other = run(svc.login("test", "alice", "pw-a")).token
    assert run(svc.revoke(other)) is True
    with pytest.raises(TokenInvalid):
        run(svc.check_token(other))
    assert run(svc.revoke(other)) is False


def test_a_token_whose_back_end_left_the_config_is_refused(svc, tmp_path):
    token = run(svc.login("test", "alice", "pw-a")).token
    later = AuthService(AuthPolicy(external_auth={"file": {"^filename": "/x", "alice": [".*"]}}), svc.tokens,
                        clock=svc.clock_)
    with pytest.raises(TokenInvalid, match="no longer configured"):
        run(later.check_token(token))


ALICE = Principal("alice", "test")
PUBLISH = [
    # (target, function, args, expected minions, allowed)
    ("web*", "test.ping", [], ["web1", "web2"], True),
    ("web1", "test.ping", [], ["web1"], True),
    ("*", "test.ping", [], ["db1", "web1", "web2"], False),      # db1 is outside web*
    ("web*", "cmd.run", ["id"], ["web1", "web2"], False),        # cmd.run is not test.*
    ("web*", ["test.ping", "test.echo"], [[], ["x"]], ["web1"], True),
    ("web*", ["test.ping", "cmd.run"], [[], ["id"]], ["web1"], False),  # every function of a multi-function job
    ("nomatch*", "test.ping", [], [], False),                    # the target matches no minion: refused
    ("", "test.ping", [], ["web1"], False),                      # empty target
    ([], "test.ping", [], ["web1"], False),
]


@pytest.mark.parametrize("tgt,fun,arg,minions,allowed", PUBLISH)
def test_publish_is_checked_against_the_expanded_minions(svc, tgt, fun, arg, minions, allowed):
    check = svc.authorize_publish(ALICE, tgt, "glob", fun, minions, arg=arg, expand=expand)
    if allowed:
        run(check)
    else:
        with pytest.raises(NotPermitted):
            run(check)


def test_an_acl_that_matches_no_minion_grants_nothing(svc):
    bob = Principal("bob", "test")  # nosuch*: [test.ping], and no group
    with pytest.raises(NotPermitted):
        run(svc.authorize_publish(bob, "web1", "glob", "test.ping", ["web1"], expand=expand))


def test_local_users_and_root(svc):
    fred = svc.local_user("fred")
    assert fred.eauth == PUBLISHER_ACL and fred.owner == "fred"
    run(svc.authorize_publish(fred, "web1", "glob", "cmd.run", ["web1"], arg=["id"], expand=expand))
    with pytest.raises(NotPermitted):
        run(svc.authorize_publish(fred, "web2", "glob", "cmd.run", ["web2"], expand=expand))
    with pytest.raises(NotPermitted, match="no rights in publisher_acl"):
        svc.local_user("barney")
    run(svc.authorize_publish(ROOT, "*", "glob", "cmd.run", [], expand=expand))  # root: no limits at all
    assert Principal("root", "file").owner == "file:root"  # a file user named root owns none of root's jobs


def test_the_find_job_probe_only_for_ones_own_job(svc):
    jobs = svc.jobs
    mine = Job(jid="20240101000000000000", fun="test.sleep", arg=[], kwarg={}, tgt="web*", tgt_type="glob", ts=1.0,
               user="test:alice")
    theirs = Job(jid="20240101000000000001", fun="cmd.run", arg=[], kwarg={}, tgt="*", tgt_type="glob", ts=1.0,
                 user="root")
    jobs.records = {mine.jid: JobRecord(mine, ["web1", "web2"]), theirs.jid: JobRecord(theirs, sorted(MINIONS))}
    run(svc.authorize_publish(ALICE, ["web1"], "list", "jobs.find", ["web1"], arg=[mine.jid], expand=expand))
    for jid, minions in ((theirs.jid, ["web1"]), (mine.jid, ["db1"]), ("20240101000000000009", ["web1"])):
        with pytest.raises(NotPermitted, match="jobs.find"):
            run(svc.authorize_publish(ALICE, minions, "list", "jobs.find", minions, arg=[jid], expand=expand))
    assert svc.may_see(ALICE, jobs.records[mine.jid]) and not svc.may_see(ALICE, jobs.records[theirs.jid])


def test_preview_shows_what_the_rights_cover(svc):
    assert run(svc.visible(ALICE, sorted(MINIONS), expand)) == ["web1", "web2"]
    assert run(svc.visible(svc.local_user("wilma"), sorted(MINIONS), expand)) == sorted(MINIONS)


def test_runner_and_wheel_rights_are_audited(svc, tmp_path):
    svc.authorize_runner(ALICE, "jobs.list_jobs")
    with pytest.raises(NotPermitted):
        svc.authorize_runner(ALICE, "manage.status")
    with pytest.raises(NotPermitted):
        svc.authorize_wheel(ALICE, "key.accept")
    svc.authorize_wheel(ROOT, "key.delete")
    with pytest.raises(NotPermitted, match="not a wheel function name"):
        svc.authorize_wheel(ROOT, "../key")
    assert [(e["action"], e["fun"], e["outcome"]) for e in audit(tmp_path)] == [
        ("runner", "jobs.list_jobs", "allowed"), ("runner", "manage.status", "refused"),
        ("wheel", "key.accept", "refused"), ("wheel", "key.delete", "allowed"), ("wheel", "../key", "refused")]
