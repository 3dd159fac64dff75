"""user and group modules against this machine's real account databases: reads compared with getent,
and (as root) a real user and group added, changed and deleted, cleaned up in a finally."""

from __future__ import annotations

import os
import secrets
import subprocess

import pytest

from rx.modules import CommandError
from rx.modules import groupadd as group
from rx.modules import useradd as user

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="adding users needs root")


def _getent(db: str, key: str) -> list[str]:
    p = subprocess.run(["getent", db, key], capture_output=True, text=True, timeout=10)
    return p.stdout.rstrip("\n").split(":") if p.returncode == 0 else []


def test_virtual():
    assert user.__virtual__() is True and group.__virtual__() is True


def test_info_root_matches_getent():
    fields = _getent("passwd", "root")
    info = user.info("root")
    assert info["name"] == "root" and info["uid"] == 0 and info["gid"] == 0
    assert info["home"] == fields[5] and info["shell"] == fields[6] and info["passwd"] == fields[1]
    assert "root" in info["groups"]
    assert set(info) == {"name", "passwd", "uid", "gid", "home", "shell", "groups", "fullname", "roomnumber",
                         "workphone", "homephone", "other"}
    assert user.primary_group("root") == "root"


def test_lists_match_getent():
    out = subprocess.run(["getent", "passwd"], capture_output=True, text=True, timeout=10).stdout
    assert user.list_users() == sorted({line.split(":")[0] for line in out.splitlines()})
    assert [e["name"] for e in user.getent()] == [line.split(":")[0] for line in out.splitlines()]
    gout = subprocess.run(["getent", "group"], capture_output=True, text=True, timeout=10).stdout
    assert group.list_groups() == sorted({line.split(":")[0] for line in gout.splitlines()})
    root = next(g for g in group.getent() if g["name"] == "root")
    assert root == group.info("root") and root["gid"] == 0


@pytest.mark.parametrize("bad", ["-o", "a b", "../x", "", "x;rm", 7, None, "a/b"])
def test_bad_names_are_refused_before_any_tool_runs(bad):
    with pytest.raises(CommandError, match="name must be"):
        user.info(bad)
    with pytest.raises(CommandError, match="name must be"):
        group.add(bad)


def test_missing_user_and_group():
    assert user.info("rx-no-such-user") == {} and user.list_groups("rx-no-such-user") == []
    assert group.info("rx-no-such-group") == {}
    with pytest.raises(CommandError, match="does not exist"):
        user.chshell("rx-no-such-user", "/bin/sh")
    with pytest.raises(CommandError, match="does not exist"):
        group.adduser("rx-no-such-group", "root")
    with pytest.raises(CommandError, match="does not exist"):
        group.adduser("root", "rx-no-such-user")


def test_bad_arguments():
    with pytest.raises(CommandError, match="absolute path"):
        user.add("rxbad", shell="bash")
    with pytest.raises(CommandError, match="whole number"):
        user.add("rxbad", uid="12a")
    with pytest.raises(CommandError, match="GECOS"):
        user.add("rxbad", fullname="a:b")
    assert user.info("rxbad") == {}


@as_root
def test_user_and_group_lifecycle(tmp_path):
    tag = secrets.token_hex(3)
    uname, gname, gname2 = f"rxu{tag}", f"rxg{tag}", f"rxh{tag}"
    try:
        assert group.add(gname) is True
        assert group.add(gname2, system=True) is True
        assert group.info(gname)["members"] == []
        with pytest.raises(CommandError, match="groupadd"):
            group.add(gname)

        assert user.add(uname, shell="/bin/sh", groups=[gname], fullname="Rx Test", home=str(tmp_path / "h1")) is True
        info = user.info(uname)
        assert info["shell"] == "/bin/sh" and info["fullname"] == "Rx Test" and info["home"] == str(tmp_path / "h1")
        assert gname in info["groups"] and os.path.isdir(tmp_path / "h1")
        assert _getent("passwd", uname)[6] == "/bin/sh"
        with pytest.raises(CommandError, match="useradd.*exists"):
            user.add(uname)

        assert user.chshell(uname, "/bin/bash") is True
        assert _getent("passwd", uname)[6] == "/bin/bash"
        (tmp_path / "h1" / "keep").write_text("x")
        assert user.chhome(uname, str(tmp_path / "h2"), persist=True) is True
        assert user.info(uname)["home"] == str(tmp_path / "h2") and (tmp_path / "h2" / "keep").exists()
        assert user.chgroups(uname, gname2, append=True) is True
        assert {gname, gname2} <= set(user.list_groups(uname))
        assert user.chgroups(uname, [gname2]) is True
        assert gname not in user.list_groups(uname) and gname2 in user.list_groups(uname)
        assert user.chfullname(uname, "Renamed") is True and user.info(uname)["fullname"] == "Renamed"

        assert group.adduser(gname, uname) is True and uname in group.info(gname)["members"]
        assert uname in _getent("group", gname)[3].split(",")
        assert group.adduser(gname, uname) is True  # already a member: still True, no duplicate
        assert group.info(gname)["members"].count(uname) == 1
        assert group.deluser(gname, uname) is True and uname not in group.info(gname)["members"]
        assert group.members(gname, f"{uname},root") is True
        assert sorted(group.info(gname)["members"]) == sorted([uname, "root"])
        assert group.members(gname, "") is True and group.info(gname)["members"] == []
        gid = group.info(gname)["gid"]
        free = next(g for g in range(gid + 1000, gid + 2000) if not _getent("group", str(g)))
        assert group.chgid(gname, free) is True and group.info(gname)["gid"] == free

        assert user.delete(uname, remove=True) is True
        assert user.info(uname) == {} and not _getent("passwd", uname)
        assert not (tmp_path / "h2").exists()
        assert group.delete(gname) is True and group.info(gname) == {}
        with pytest.raises(CommandError, match="does not exist"):
            group.delete(gname)
    finally:
        subprocess.run(["userdel", "-r", uname], capture_output=True, timeout=30)
        for g in (gname, gname2):
            subprocess.run(["groupdel", g], capture_output=True, timeout=30)
    assert not _getent("passwd", uname) and not _getent("group", gname2)
