"""cmd, file, archive, cron, timezone, system, config and event through a real master and minion:
at least one function of each, the retcodes the client sees, and the bad input of issue #10 that
belongs to them (a missing binary, a relative path, a runas user that does not exist)."""

from __future__ import annotations

import json
import os
import re
import shutil

from conftest import EventWatch
from rx.client.local import LocalClient


def test_cmd_through_a_minion(fleet, tmp_path):
    with LocalClient(cfg=fleet.cfg) as c:
        r = c.cmd("m1", "cmd.run_all", ["echo out; echo err >&2; exit 3"], full_return=True)["m1"]
        assert r["retcode"] == 3
        assert {k: r["ret"][k] for k in ("retcode", "stdout", "stderr")} == {"retcode": 3, "stdout": "out",
                                                                             "stderr": "err"}
        assert c.cmd("m1", "cmd.run", ["exit 4"], kwarg={"ignore_retcode": True}, full_return=True)["m1"]["retcode"] == 0
        assert c.cmd("m1", "cmd.run", [["echo", "$HOME|x"]]) == {"m1": "$HOME|x"}
        assert c.cmd("m1", "cmd.run", [r"printf 'caf\351'"]) == {"m1": "caf\ufffd"}
        r = c.cmd("m1", "cmd.run", ["sleep 300"], kwarg={"timeout": 1}, full_return=True)["m1"]
        assert r["retcode"] == 1 and "timed out after 1s" in r["ret"]
        r = c.cmd("m1", "cmd.run", [["rx-no-such-binary"]], full_return=True)["m1"]
        assert r["retcode"] == 1 and r["ret"] == "ERROR: cannot run 'rx-no-such-binary': no such file or command"
        r = c.cmd("m1", "cmd.run", ["id"], kwarg={"runas": "rx-no-such-user"}, full_return=True)["m1"]
        assert r["retcode"] == 1 and r["ret"] == "ERROR: runas: user 'rx-no-such-user' does not exist"
        if os.geteuid() == 0:
            assert c.cmd("m1", "cmd.run", ["id -un"], kwarg={"runas": "nobody"}) == {"m1": "nobody"}
        r = c.cmd("m1", "cmd.script", ["salt://scripts/x.sh"], full_return=True)["m1"]
        assert r["retcode"] == 1 and "scripts/x.sh" in r["ret"]  # the master's file roots do not have it
    out = fleet.run_cli("rx", "m1", "cmd.run", "echo a b | tr ' ' -", "--out", "json")
    assert out.returncode == 0 and json.loads(out.stdout) == {"m1": "a-b"}


def test_file_through_a_minion(fleet, tmp_path):
    p = str(tmp_path / "f.conf")
    with LocalClient(cfg=fleet.cfg) as c:
        # (as in Salt, a `name=value` word in `arg` is a keyword argument: these lines are not)
        assert c.cmd("m1", "file.write", [p, "a: 1", "b: 2"]) == {"m1": f'Wrote 2 lines to "{p}"'}
        assert c.cmd("m1", "file.read", [p]) == {"m1": "a: 1\nb: 2\n"}
        stats = c.cmd("m1", "file.stats", [p])["m1"]
        assert stats["size"] == 10 and stats["type"] == "file" and re.fullmatch(r"0[0-7]{3}", stats["mode"])
        r = c.cmd("m1", "file.read", ["etc/passwd"], full_return=True)["m1"]
        assert r["retcode"] == 1 and r["ret"] == "ERROR: path 'etc/passwd' is relative: give an absolute path"
    r = fleet.run_cli("rx", "m1", "file.set_mode", p, "0640", "--out", "json")
    assert json.loads(r.stdout) == {"m1": "0640"} and oct(os.stat(p).st_mode & 0o777) == "0o640"


def test_archive_through_a_minion(fleet, tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "x").write_text("x")
    out = str(tmp_path / "o.tgz")
    with LocalClient(cfg=fleet.cfg) as c:
        assert c.cmd("m1", "archive.tar", ["czf", out, "src"], kwarg={"cwd": str(tmp_path)}) == {"m1": ["src", "src/x"]}
        assert c.cmd("m1", "archive.list", [out]) == {"m1": ["src/", "src/x"]}


def test_cron_through_a_minion(fleet):
    with LocalClient(cfg=fleet.cfg) as c:
        r = c.cmd("m1", "cron.list_tab", ["root"], full_return=True)["m1"]
    if shutil.which("crontab") is None:
        assert r["retcode"] != 0
        assert "'cron.list_tab' is not available" in r["ret"] and "crontab program is not installed" in r["ret"]
    else:
        assert r["retcode"] == 0 and set(r["ret"]) == {"pre", "crons", "special", "env"}


def test_timezone_system_and_config_through_a_minion(fleet):
    with LocalClient(cfg=fleet.cfg) as c:
        zone = c.cmd("m1", "timezone.get_zone")["m1"]
        if os.path.islink("/etc/localtime"):
            assert os.readlink("/etc/localtime").endswith("/" + zone)
        assert re.fullmatch(r"[+-]\d{4}", c.cmd("m1", "timezone.get_offset")["m1"])
        assert re.fullmatch(r"\d\d:\d\d:\d\d (AM|PM)", c.cmd("m1", "system.get_system_time")["m1"])
        r = c.cmd("m1", "system.reboot", ["5; touch /tmp/rx-pwned"], full_return=True)["m1"]
        assert r["retcode"] == 1 and "at_time" in r["ret"] and not os.path.exists("/tmp/rx-pwned")
        assert c.cmd("m1", "config.get", ["master"]) == {"m1": "127.0.0.1"}
        assert c.cmd("m1", "config.get", ["id"]) == {"m1": "m1"}
        assert c.cmd("m2", "config.get", ["id"]) == {"m2": "m2"}
        assert c.cmd("m1", "config.get", ["kernel"]) == {"m1": "Linux"}
        assert c.cmd("m1", "config.get", ["no:such"], kwarg={"default": "dflt"}) == {"m1": "dflt"}


def test_event_send_through_a_minion_is_filed_under_its_id(fleet):
    with EventWatch(fleet.cfg, "rx/minion/") as watch, LocalClient(cfg=fleet.cfg) as c:
        assert c.cmd("m1", "event.send", ["myapp/deployed"], kwarg={"version": "1.2", "with_grains": ["kernel"]}) \
            == {"m1": True}
        tag, data = watch.next(match=lambda t: t.endswith("/myapp/deployed"))
        assert tag == "rx/minion/m1/myapp/deployed"
        assert data == {"id": "m1", "version": "1.2", "grains": {"kernel": "Linux"}}
        r = c.cmd("m1", "event.send", ["start"], kwarg={"grains": {"os": "forged"}}, full_return=True)["m1"]
        assert r["retcode"] == 1 and "reserved" in r["ret"]
        r = c.cmd("m1", "event.send", ["../../job/1/ret/m2"], full_return=True)["m1"]
        assert r["retcode"] == 1 and "'..'" in r["ret"]
        assert c.cmd("m1", "event.send", ["after"]) == {"m1": True}
        tag, _ = watch.next(match=lambda t: t.endswith("/after"))
        assert tag == "rx/minion/m1/after"
        assert not [t for t, _ in watch.drain() if "/start" in t or "/job/" in t], "no forged event got through"


def test_a_huge_output_is_truncated_on_the_minion_and_still_returned(fleet):
    with LocalClient(cfg=fleet.cfg) as c:
        r = c.cmd("m1", "cmd.run", ["head -c 50000000 /dev/zero | tr '\\0' a"], full_return=True, timeout=60)["m1"]
    assert r["retcode"] == 0 and r["ret"].startswith("a" * 1000)
    assert "42000000 more bytes of stdout were dropped" in r["ret"] and len(r["ret"]) < 8_100_000
