"""The `file` back end's password file, the file token store, the wire of user requests, and the
config check of external_auth / publisher_acl (exit 2 for anything rx cannot read)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest

from rx.config import ConfigError, load_master_config
from rx.master.auth.passwords import (FileBackend, PasswordFileError, hash_password, parse, set_user,
                                      verify_password)
from rx.master.store.base import TokenRecord
from rx.master.store.file_tokens import FileTokenStore, token_name
from rx.transport.errors import ProtocolError
from rx.transport.usermsgs import Credentials, LoginRequest, UserRequest, frame, frame_length

TOKEN = "t" * 43


def test_hashes_are_salted_scrypt_and_verify():
    a, b = hash_password("secret", ln=4), hash_password("secret", ln=4)
    assert a != b and a.startswith("$scrypt$ln=4,r=8,p=1$") and "secret" not in a
    assert verify_password("secret", a) and not verify_password("Secret", a)
    for stored in ("secret", "$scrypt$ln=40,r=8,p=1$AAAA$AAAA", "$1$md5$x", a.replace("$scrypt$", "$scrypt2$")):
        assert not verify_password("secret", stored)


def test_the_file_never_takes_plaintext():
    with pytest.raises(PasswordFileError, match="line 2"):
        parse("# users\nbob:hunter2\n")
    assert parse("\n# c\nbob:" + hash_password("x", ln=4) + "\n").keys() == {"bob"}


def test_add_change_delete_users(tmp_path):
    path = str(tmp_path / "users")
    set_user(path, "bob", "one")
    set_user(path, "carol", "two")
    set_user(path, "bob", "three")
    assert os.stat(path).st_mode & 0o777 == 0o600
    backend = FileBackend(path)
    assert backend.authenticate("bob", "three") and not backend.authenticate("bob", "one")
    assert backend.authenticate("carol", "two") and not backend.authenticate("dave", "")
    set_user(path, "carol", None)
    assert not backend.authenticate("carol", "two")  # read again when it changes
    with pytest.raises(PasswordFileError):
        set_user(path, "a:b", "x")


def test_a_file_others_can_read_or_write_is_ignored(tmp_path, caplog):
    path = tmp_path / "users"
    set_user(str(path), "bob", "pw")
    os.chmod(path, 0o644)
    assert not FileBackend(str(path)).authenticate("bob", "pw")
    assert "readable by group or others" in caplog.text
    os.chmod(path, 0o622)
    assert not FileBackend(str(path)).authenticate("bob", "pw")
    assert "writable by group and others" in caplog.text


def test_add_user_command(tmp_path):
    path = tmp_path / "users"
    done = subprocess.run([sys.executable, "-m", "rx.master.auth", "--add-user", "bob", "--file", str(path),
                           "--password-stdin"], input="pw\n", capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert FileBackend(str(path)).authenticate("bob", "pw")
    empty = subprocess.run([sys.executable, "-m", "rx.master.auth", "--add-user", "eve", "--file", str(path),
                            "--password-stdin"], input="\n", capture_output=True, text=True)
    assert empty.returncode == 1 and "empty password" in empty.stderr


def test_token_store_round_trip_purge_and_junk(tmp_path):
    store = FileTokenStore(tmp_path / "tok")

    async def go() -> None:
        await store.prepare()
        assert os.stat(tmp_path / "tok").st_mode & 0o777 == 0o700
        live, old = TokenRecord(TOKEN, "bob", "file", 1.0, 100.0, ("ops",)), TokenRecord("o" * 43, "x", "pam", 1.0, 5.0)
        await store.put(live)
        await store.put(old)
        assert await store.get(TOKEN) == live
        (tmp_path / "tok" / token_name("j" * 43)).write_bytes(b"\xc1junk")
        assert await store.get("j" * 43) is None
        assert await store.get("../../etc/passwd") is None
        assert await store.purge(50.0) == 2  # the expired one and the junk
        assert await store.get(TOKEN) == live and await store.get("o" * 43) is None
        assert await store.remove(TOKEN) and not await store.remove(TOKEN)
    asyncio.run(go())


def test_failed_login_counts_survive_a_corrupt_file(tmp_path):
    store = FileTokenStore(tmp_path)

    async def go() -> None:
        await store.prepare()
        (tmp_path / ".failures").write_bytes(b"\x92\x01")  # not a table
        assert await store.note_failure(["user:a"], 10.0, 60.0, 2, 30.0) == 0.0
        assert await store.note_failure(["user:a"], 11.0, 60.0, 2, 30.0) == 41.0
        assert await store.locked_until(["user:b", "user:a"], 12.0) == 41.0
        await store.clear_failures(["user:a"])
        assert await store.locked_until(["user:a"], 12.0) == 0.0
    asyncio.run(go())


def test_user_wire():
    creds = Credentials.from_wire({"token": TOKEN, "peer_user": "fred", "peer_uid": 1001, "source": "uid:1001"})
    assert creds == Credentials(TOKEN, "fred", 1001, "uid:1001") and Credentials.from_wire(creds.to_wire()) == creds
    assert not Credentials() and Credentials(peer_user="x")
    for bad in ({"token": "short"}, {"token": 5}, {"peer_user": "x"}, {"peer_user": "x\0y", "peer_uid": 1}, []):
        with pytest.raises(ProtocolError):
            Credentials.from_wire(bad)
    with pytest.raises(ProtocolError, match="cmd"):
        UserRequest.from_wire({"cmd": "_auth", "load": {}})
    with pytest.raises(ProtocolError, match="eauth"):
        LoginRequest.from_wire({"eauth": "../pam", "username": "a", "password": "b"})
    assert "secret" not in repr(LoginRequest("pam", "a", "secret"))
    assert frame_length(frame(b"abc")[:4], 10) == 3
    with pytest.raises(ProtocolError):
        frame_length(frame(b"x" * 11)[:4], 10)


CONFIG_ERRORS = [
    ({"publisher_acl": {"fred": "test.ping"}}, "publisher_acl: fred: expected a list"),
    ({"publisher_acl": {"fred": [{"web* and": ["test.ping"]}]}}, "target 'web* and'"),
    ({"external_auth": {"ldap": {"fred": [".*"]}}}, "unknown back end 'ldap'"),
    ({"external_auth": {"file": {"fred": [".*"]}}}, "needs ^filename"),
    ({"external_auth": {"file": {"^filename": "u", "^hashtype": "md5"}}}, "unknown option '^hashtype'"),
    ({"external_auth": {"pam": {"fred": ["(("]}}}, "not a regular expression"),
    ({"external_auth": {"Pam": {}}}, "not a back-end name"),
]


@pytest.mark.parametrize("settings,why", CONFIG_ERRORS)
def test_config_refuses_acls_it_cannot_read(tmp_path, settings, why):
    import yaml
    (tmp_path / "master").write_text(yaml.safe_dump({"root_dir": str(tmp_path), **settings}))
    with pytest.raises(ConfigError) as exc:
        load_master_config(str(tmp_path))
    assert why in str(exc.value) and str(tmp_path / "master") in str(exc.value)


def test_config_paths_and_defaults(tmp_path):
    import yaml
    (tmp_path / "master").write_text(yaml.safe_dump({"root_dir": str(tmp_path), "external_auth": {
        "file": {"^filename": "etc/rx/users", "bob": [".*"]}}}))
    cfg = load_master_config(str(tmp_path))
    assert cfg.external_auth["file"]["^filename"] == str(tmp_path / "etc/rx/users")
    assert cfg.users_enabled and cfg.token_expire == 43200.0
    assert cfg.user_socket == str(tmp_path / "var/run/rx/master-users/master_users.sock")
    assert cfg.token_dir == str(tmp_path / "var/cache/rx/master/tokens")


def test_an_rx_auth_entry_point_is_a_back_end(tmp_path, monkeypatch):
    """A back end from another package: a real distribution (dist-info with entry_points.txt) on sys.path."""
    (tmp_path / "rxauth_demo.py").write_text(
        "class Backend:\n"
        "    options = {'realm'}\n"
        "    def __init__(self, options):\n"
        "        self.realm = options['realm']\n"
        "    def authenticate(self, username, password):\n"
        "        return password == f'{username}@{self.realm}'\n"
        "    def groups(self, username):\n"
        "        return ['staff']\n")
    info = tmp_path / "rxauth_demo-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: rxauth-demo\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[rx.auth]\ndemo = rxauth_demo:Backend\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import yaml
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "master").write_text(yaml.safe_dump({"root_dir": str(tmp_path), "external_auth": {
        "demo": {"^realm": "LAB", "staff%": ["test.ping"]}}}))
    cfg = load_master_config(str(conf))
    (conf / "master").write_text(yaml.safe_dump({"root_dir": str(tmp_path), "external_auth": {
        "demo": {"^realm": "LAB", "^nope": 1}}}))
    with pytest.raises(ConfigError, match=r"unknown option '\^nope'"):
        load_master_config(str(conf))

    from rx.master.services.auth import AuthPolicy, AuthService, LoginFailed
    store = FileTokenStore(tmp_path / "tok")
    asyncio.run(store.prepare())
    service = AuthService(AuthPolicy(external_auth=cfg.external_auth), store)
    token = asyncio.run(service.login("demo", "ann", "ann@LAB"))
    assert token.perms == ["test.ping"]  # through the back end's groups
    with pytest.raises(LoginFailed):
        asyncio.run(service.login("demo", "ann", "ann@ELSEWHERE"))
