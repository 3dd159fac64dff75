"""Users who are not root, on real daemons: real local users and a real group (useradd/groupadd), `rx` run
with their uid through the master's user socket; publisher_acl, external_auth (`file`, and `pam` against
the host's PAM with a password set by chpasswd), tokens (`rx -a ... -T`, ~/.rx_token, expiry, revocation,
forgery), fail-closed checks, login rate limiting, and the audit log.  A refused job is refused before
anything is stored or sent: the job store is the witness."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

from rx.client.masterlink import MasterLink
from rx.master.services import open_services
from tests.support.localusers import LocalUser, local_users, open_to_users, python_as, run_as
from tests.support.procs import wait_for
from tests.support.sandbox import Sandbox

BOB_PW = "bob-" + secrets.token_urlsafe(8)
CAROL_PW = "carol-" + secrets.token_urlsafe(8)


class Site:
    def __init__(self, box: Sandbox, users: list[LocalUser], group: str) -> None:
        self.box, self.users, self.group = box, users, group
        self.cfg = box.cfg

    def rx(self, user: LocalUser, *args: str, input: str = "") -> subprocess.CompletedProcess:
        return run_as(user, "-c", str(self.box.master_dir), *args, input=input)

    def audit(self) -> list[dict]:
        return [json.loads(line) for line in Path(self.cfg.audit_log_file).read_text().splitlines()]

    def jobs_of(self, user: str) -> dict:
        services = open_services(self.cfg)
        try:
            jobs = asyncio.run(services.jobs.list_jobs())
        finally:
            services.close()
        return {jid: info for jid, info in jobs.items() if info["User"] == user}


def _start(box: Sandbox, users: list[LocalUser], group: str, **settings: object) -> None:
    open_to_users(box.root)
    box.start_master(**settings)
    wait_for(lambda: os.path.exists(box.cfg.user_socket), what="the user socket")


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    with local_users(3, group_members=1) as (users, group):
        u0, u1, u2 = users
        root = Path(tempfile.mkdtemp(prefix="rx-users-"))
        box = Sandbox(root)
        try:
            passwords = root / "eauth-users"
            for name, pw in (("bob", BOB_PW), ("carol", CAROL_PW)):
                done = subprocess.run([sys.executable, "-m", "rx.master.auth", "--add-user", name, "--file",
                                       str(passwords), "--password-stdin"], input=pw + "\n", capture_output=True,
                                      text=True)
                assert done.returncode == 0, done.stderr
            _start(box, users, group, auth_failures_max=3, publisher_acl={
                u0.name: [{"m1": ["test.*"]}, {"nosuch*": ["cmd.run"]}],
                f"{group}%": ["grains.item"],
            }, external_auth={
                "file": {"^filename": str(passwords), "bob": [{"m2": ["test.ping"]}], "carol": [".*"]},
                "pam": {u0.name: [{"m1": ["test.ping"]}]},
            })
            box.start_minion("m1")
            box.start_minion("m2")
            yield Site(box, users, group)
        finally:
            box.close()


def test_a_local_user_runs_what_publisher_acl_allows(site):
    u0 = site.users[0]
    done = site.rx(u0, "m1", "test.ping", "--out", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"m1": True}
    both = site.rx(u0, "*", "grains.item", "os", "--out", "json")  # through the group% entry
    assert both.returncode == 0, both.stderr
    assert set(json.loads(both.stdout)) == {"m1", "m2"}
    jobs = site.jobs_of(u0.name)
    assert {info["Function"] for info in jobs.values()} == {"test.ping", "grains.item"}
    line = next(e for e in reversed(site.audit()) if e["action"] == "publish" and e["user"] == u0.name)
    assert line["eauth"] == "publisher_acl" and line["outcome"] == "allowed" and line["fun"] == "grains.item"
    assert line["target"] == "*" and line["minions"] == 2 and line["source"] == f"uid:{u0.uid}"


REFUSED = [
    (["*", "test.ping"], "1 outside their rights: m2"),       # m2 is outside m1: test.*
    (["m1", "cmd.run", "id"], "may not run cmd.run"),          # cmd.run only on nosuch*, which matches nothing
    (["nosuch1", "cmd.run", "id"], "matches no minion"),      # an empty expanded set: refused, not vacuously allowed
    (["-G", "os:NoSuchOS", "test.ping"], "matches no minion"),
]


@pytest.mark.parametrize("args,why", REFUSED)
def test_outside_ones_rights_nothing_is_published(site, args, why):
    u0 = site.users[0]
    before = site.jobs_of(u0.name)
    done = site.rx(u0, *args)
    assert done.returncode == 5, (done.stdout, done.stderr)
    assert why in done.stderr and not done.stdout
    assert site.jobs_of(u0.name) == before  # nothing stored, nothing sent
    line = site.audit()[-1]
    assert (line["user"], line["action"], line["outcome"]) == (u0.name, "publish", "refused")
    assert line["fun"] == args[-2 if args[-1] == "id" else -1] and why in line["reason"]


def test_a_user_without_rights_and_outside_the_group(site):
    u1 = site.users[1]
    done = site.rx(u1, "*", "grains.item", "os")
    assert done.returncode == 5 and "no rights in publisher_acl" in done.stderr
    assert site.jobs_of(u1.name) == {}
    assert site.audit()[-1]["outcome"] == "refused"


def test_a_user_runs_batches(site):
    done = site.rx(site.users[0], "-b", "1", "*", "grains.item", "os", "--out", "json", "--static")
    assert done.returncode == 0, done.stderr
    assert set(json.loads(done.stdout)) == {"m1", "m2"}


def test_a_long_job_is_probed_and_gathered(site):
    """The gather's jobs.find probe is allowed for the user's own job, on its minions."""
    done = site.rx(site.users[0], "-t", "1", "m1", "test.sleep", "3", "--out", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"m1": True}
    assert any(e["fun"] == "jobs.find" and e["outcome"] == "allowed" for e in site.audit() if e.get("fun"))


def test_a_user_reads_only_their_own_jobs(site):
    u0 = site.users[0]
    root_job = subprocess.run([sys.executable, "-m", "rx.client.cli", "-c", str(site.box.master_dir), "--async",
                               "m1", "test.ping"], capture_output=True, text=True)
    assert root_job.returncode == 0, root_job.stderr
    jid = root_job.stdout.strip()
    own = next(iter(site.jobs_of(u0.name)))
    code = (f"from rx.client.local import LocalClient\nfrom rx.client.results import PermissionDenied\n"
            f"c = LocalClient({str(site.box.master_dir)!r})\n"
            f"print('own', sorted(c.lookup({own!r}).minions))\n"
            f"try:\n    c.lookup({jid!r})\n    print('READ')\nexcept PermissionDenied as e:\n    print('DENIED', e)\n")
    done = python_as(u0, code)
    assert done.returncode == 0, done.stderr
    assert "own ['m1']" in done.stdout and f"DENIED job {jid} is not {u0.name}'s" in done.stdout
    assert not Path(site.cfg.root_key_path).stat().st_mode & 0o077  # the user never read the root key


def test_root_is_unchanged_and_audited(site):
    done = subprocess.run([sys.executable, "-m", "rx.client.cli", "-c", str(site.box.master_dir), "*", "cmd.run",
                           "true"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    line = next(e for e in reversed(site.audit()) if e["action"] == "publish")
    assert (line["eauth"], line["fun"], line["outcome"], line["minions"]) == ("", "cmd.run", "allowed", 2)


def test_file_eauth_token_kept_used_revoked_forged(site):
    u1 = site.users[1]
    made = site.rx(u1, "-a", "file", "--username", "bob", "-T", input=BOB_PW + "\n")
    assert made.returncode == 0, made.stderr
    token_file = u1.home / ".rx_token"
    assert token_file.stat().st_mode & 0o777 == 0o600 and token_file.stat().st_uid == u1.uid
    token = token_file.read_text().strip()
    ok = site.rx(u1, "m2", "test.ping", "--out", "json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout) == {"m2": True}
    assert site.jobs_of("file:bob")  # the job's User: the back end and the name, never an OS user's name
    no = site.rx(u1, "m1", "test.ping")
    assert no.returncode == 5 and "bob may not run test.ping" in no.stderr
    assert (site.audit()[-1]["user"], site.audit()[-1]["eauth"]) == ("bob", "file")

    link = MasterLink(cfg=site.cfg)  # as root, through the service: logout
    asyncio.run(link.logout(token))
    revoked = site.rx(u1, "m2", "test.ping")
    assert revoked.returncode == 5 and "unknown or revoked token" in revoked.stderr

    token_file.write_text(secrets.token_urlsafe(32) + "\n")  # a forged token
    forged = site.rx(u1, "m2", "test.ping")
    assert forged.returncode == 5 and "unknown or revoked token" in forged.stderr
    os.chmod(token_file, 0o644)
    loose = site.rx(u1, "m2", "test.ping")
    assert loose.returncode == 5 and "no one else can read" in loose.stderr
    token_file.unlink()  # no token: the local user, who has no rights
    missing = site.rx(u1, "m2", "test.ping")
    assert missing.returncode == 5 and "no rights in publisher_acl" in missing.stderr


def test_the_local_socket_with_a_token_is_that_users(site):
    """rx-api's path: a root-key holder publishing with a user's token gets that user's rights, checked by
    the same worker function; a forged token gets nothing."""
    from rx.client.local import LocalClient
    from rx.client.results import PermissionDenied
    link = MasterLink(cfg=site.cfg)
    token = asyncio.run(link.login("file", "bob", BOB_PW)).token
    with LocalClient(cfg=site.cfg, token=token, source="192.0.2.7") as client:
        assert client.cmd("m2", "test.ping") == {"m2": True}
        with pytest.raises(PermissionDenied, match="bob may not run cmd.run"):
            client.cmd("m2", "cmd.run", ["id"])
    with LocalClient(cfg=site.cfg, token=secrets.token_urlsafe(32)) as client:
        with pytest.raises(PermissionDenied, match="unknown or revoked token"):
            client.cmd("m2", "test.ping")
    refused = [e for e in site.audit() if e["action"] == "publish" and e["outcome"] == "refused"][-2:]
    assert refused[0]["user"] == "bob" and refused[0]["source"] == "192.0.2.7" and refused[1]["eauth"] == "token"
    asyncio.run(link.logout(token))


def test_eauth_without_T_revokes_its_token_at_the_end(site):
    u1 = site.users[1]
    tokens_before = set(os.listdir(site.cfg.token_dir))
    done = site.rx(u1, "-a", "file", "--username", "bob", "m2", "test.ping", input=BOB_PW + "\n")
    assert done.returncode == 0, done.stderr
    assert not (u1.home / ".rx_token").exists()
    assert set(os.listdir(site.cfg.token_dir)) - tokens_before <= {".failures", ".failures.lock"}
    actions = [e["action"] for e in site.audit()]
    since_login = actions[len(actions) - 1 - actions[::-1].index("login"):]
    assert since_login[:2] == ["login", "publish"] and since_login[-1] == "logout"


def test_pam_with_a_real_user(site):
    pytest.importorskip("pam", reason="python-pam is not installed")
    u0 = site.users[0]
    done = site.rx(u0, "-a", "pam", "m1", "test.ping", "--out", "json", input=u0.password + "\n")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"m1": True}
    bad = site.rx(u0, "-a", "pam", "m1", "test.ping", input="wrong\n")
    assert bad.returncode == 5 and "authentication failed" in bad.stderr
    assert [(e["eauth"], e["outcome"]) for e in site.audit() if e["action"] == "login"][-2:] == \
        [("pam", "allowed"), ("pam", "failed")]


def test_failed_logins_lock_out(site):
    u2 = site.users[2]
    for _ in range(3):
        bad = site.rx(u2, "-a", "file", "--username", "carol", "m1", "test.ping", input="nope\n")
        assert bad.returncode == 5 and "authentication failed" in bad.stderr
    locked = site.rx(u2, "-a", "file", "--username", "carol", "m1", "test.ping", input=CAROL_PW + "\n")
    assert locked.returncode == 5 and "too many failed logins" in locked.stderr
    assert site.jobs_of("file:carol") == {}
    assert site.audit()[-1]["outcome"] == "locked" and site.audit()[-1]["source"] == f"uid:{u2.uid}"


def test_a_token_expires():
    with local_users(1) as (users, group):
        user = users[0]
        root = Path(tempfile.mkdtemp(prefix="rx-users-"))
        box = Sandbox(root)
        try:
            passwords = root / "eauth-users"
            subprocess.run([sys.executable, "-m", "rx.master.auth", "--add-user", "bob", "--file", str(passwords),
                            "--password-stdin"], input=BOB_PW + "\n", check=True, capture_output=True, text=True)
            _start(box, users, group, token_expire=3,
                   external_auth={"file": {"^filename": str(passwords), "bob": [".*"]}})
            box.start_minion("m1")
            made = run_as(user, "-c", str(box.master_dir), "-a", "file", "--username", "bob", "-T",
                          input=BOB_PW + "\n")
            assert made.returncode == 0, made.stderr
            made_at = time.time()
            first = run_as(user, "-c", str(box.master_dir), "m1", "test.ping")
            if time.time() - made_at < 3:  # on a very slow host the token may be gone already: that is the point
                assert first.returncode == 0, first.stderr
            wait_for(lambda: time.time() > made_at + 3.5, what="the token's expiry")
            late = run_as(user, "-c", str(box.master_dir), "m1", "test.ping")
            assert late.returncode == 5 and "expired" in late.stderr
        finally:
            box.close()


def _door(site: Site, body: bytes, *, announce: int | None = None) -> dict | None:
    """Send one frame to the user socket (as this process: root); the decoded answer, None if it hung up."""
    import socket
    import struct

    from rx.transport.codec import decode
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(20)
        s.connect(site.cfg.user_socket)
        s.sendall(struct.pack(">I", len(body) if announce is None else announce) + body)
        head = s.recv(4, socket.MSG_WAITALL)
        if len(head) < 4:
            return None
        (n,) = struct.unpack(">I", head)
        data = b""
        while len(data) < n:
            chunk = s.recv(n - len(data))
            if not chunk:
                return None
            data += chunk
        return decode(data)


def test_bad_input_on_the_user_socket(site):
    from rx.transport.codec import encode
    u0 = site.users[0]
    before = site.jobs_of("root"), site.jobs_of(u0.name)
    assert _door(site, b"\xc1 not msgpack")["error"]["type"] == "bad_request"
    assert _door(site, encode({"cmd": "_auth", "load": {}}))["error"]["type"] == "bad_request"
    assert _door(site, encode({"cmd": "publish", "load": {}, "token": "short"}))["error"]["type"] == "bad_request"
    assert _door(site, b"", announce=64 * 1024 * 1024) is None  # past the limit: hung up, nothing read
    # a client's own `auth`, `key` and `user` are overwritten: this connection is uid 0 ("root"), whom
    # publisher_acl does not list, whatever the request claims
    smuggled = {"tgt": "m1", "fun": "test.ping", "tgt_type": "glob", "key": "x" * 64, "user": u0.name,
                "auth": {"peer_user": u0.name, "peer_uid": u0.uid}}
    answer = _door(site, encode({"cmd": "publish", "load": smuggled}))
    assert answer["error"]["type"] == "permission" and "user root has no rights" in answer["error"]["message"]
    assert (site.jobs_of("root"), site.jobs_of(u0.name)) == before
    assert site.box.master.alive()
