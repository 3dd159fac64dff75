"""rx.modules.timezone, system and config on this machine: the zone against /etc/localtime and
`date`, the shutdown command line built (never run), the clock, and config.get's lookup order."""

from __future__ import annotations

import os
import re
import subprocess
from datetime import datetime, timedelta, timezone as tz

import pytest

from rx.config import MinionConfig
from rx.modules import CommandError, ExecContext
from rx.modules import config, system, timezone


def _zone_from_the_system() -> str:
    link = os.readlink("/etc/localtime")
    return link.split("/zoneinfo/", 1)[1]


@pytest.mark.skipif(not os.path.islink("/etc/localtime"), reason="/etc/localtime is not a link here")
def test_get_zone_is_the_target_of_etc_localtime():
    assert timezone.get_zone() == _zone_from_the_system()
    assert timezone.zone_compare(_zone_from_the_system()) is True


def test_get_offset_agrees_with_date():
    date = subprocess.run(["date", "+%z"], capture_output=True, text=True, check=True).stdout.strip()
    assert timezone.get_offset() == date and re.fullmatch(r"[+-]\d{4}", date)


@pytest.mark.parametrize("zone", ["../../etc/passwd", "/etc/passwd", "Europe/../../etc/passwd", "No/Such_Zone", "",
                                  None, "Europe/Paris\n", "zone.tab"])
def test_bad_zones_are_refused_before_anything_changes(zone):
    before = os.readlink("/etc/localtime") if os.path.islink("/etc/localtime") else None
    with pytest.raises(CommandError):
        timezone.set_zone(zone)
    assert (os.readlink("/etc/localtime") if os.path.islink("/etc/localtime") else None) == before


@pytest.mark.skipif(os.geteuid() != 0 or not os.path.islink("/etc/localtime"),
                    reason="writes /etc/localtime: root, and a linked zone, only")
def test_set_zone_to_the_zone_in_force_rewrites_the_link_and_changes_nothing():
    """The real write path, with the zone already set (other tests on this host read the zone at the same time)."""
    zone = _zone_from_the_system()
    assert timezone.set_zone(zone) is True
    assert os.readlink("/etc/localtime") == os.path.join(timezone.ZONEINFO, zone)
    assert timezone.get_zone() == zone
    assert not [n for n in os.listdir("/etc") if ".rx-" in n], "no temporary file left in /etc"


@pytest.mark.parametrize("action, at_time, argv", [
    ("reboot", None, ["shutdown", "-r", "now"]),
    ("reboot", "now", ["shutdown", "-r", "now"]),
    ("reboot", 0, ["shutdown", "-r", "now"]),
    ("reboot", 5, ["shutdown", "-r", "+5"]),
    ("reboot", "+15", ["shutdown", "-r", "+15"]),
    ("reboot", "15", ["shutdown", "-r", "+15"]),
    ("shutdown", "22:30", ["shutdown", "-h", "22:30"]),
    ("shutdown", "7:05", ["shutdown", "-h", "7:05"]),
    ("shutdown", None, ["shutdown", "-h", "now"]),
])
def test_shutdown_argv(action, at_time, argv):
    assert system.shutdown_argv(action, at_time) == argv


@pytest.mark.parametrize("at_time", ["-5", -5, "24:00", "12:60", "tomorrow", "5; rm -rf /", True, "+", 1.5])
def test_bad_at_time_is_refused_before_anything_runs(at_time):
    with pytest.raises(CommandError, match="at_time"):
        system.shutdown_argv("reboot", at_time)
    # reached only when the argv was refused: reboot and shutdown build theirs the same way
    with pytest.raises(CommandError, match="at_time"):
        system.reboot(at_time)
    with pytest.raises(CommandError, match="at_time"):
        system.shutdown(at_time)


def test_get_system_time_and_date_time():
    assert re.fullmatch(r"(0\d|1[0-2]):[0-5]\d:[0-5]\d (AM|PM)", system.get_system_time())
    utc = datetime.strptime(system.get_system_date_time("+0000"), "%Y-%m-%d %H:%M:%S").replace(tzinfo=tz.utc)
    assert abs(utc - datetime.now(tz.utc)) < timedelta(minutes=5)
    east = datetime.strptime(system.get_system_date_time("+0530"), "%Y-%m-%d %H:%M:%S")
    assert abs(east - utc.replace(tzinfo=None) - timedelta(hours=5, minutes=30)) < timedelta(minutes=5)
    with pytest.raises(CommandError, match="utc_offset"):
        system.get_system_time("5 hours")


@pytest.fixture
def ctx():
    cfg = MinionConfig(id="web1", master="salt.example", grains={"roles": {"web": {"tls": True}}})
    return ExecContext(minion_id="web1", config=cfg,
                       grains={"os": "Debian", "master": "not-this", "roles": {"web": {"port": 80}, "db": 1},
                               "ipv4": ["127.0.0.1", "10.0.0.5"]})


def test_config_get_looks_in_the_config_then_the_grains(ctx):
    assert config.get(ctx, "master") == "salt.example"
    assert config.get(ctx, "master", omit_opts=True) == "not-this"
    assert config.get(ctx, "os") == "Debian" and config.get(ctx, "os", omit_grains=True) == ""
    assert config.get(ctx, "id") == "web1"
    assert config.get(ctx, "grains:roles:web:tls") is True
    assert config.get(ctx, "roles:web:port") == 80 and config.get(ctx, "roles/db", delimiter="/") == 1
    assert config.get(ctx, "ipv4:1") == "10.0.0.5" and config.get(ctx, "ipv4:-1") == "10.0.0.5"
    assert config.get(ctx, "ipv4:9", default="none") == "none"
    assert config.get(ctx, "no:such:key") == "" and config.get(ctx, "no_key", default=[1]) == [1]


def test_config_get_merge(ctx):
    cfg_ctx = ExecContext(config=MinionConfig(id="a", grains={"x": 1}), grains={"grains": {"y": 2}})
    assert config.get(cfg_ctx, "grains") == {"x": 1}
    assert config.get(cfg_ctx, "grains", merge="recurse") == {"x": 1, "y": 2}
    with pytest.raises(CommandError, match="merge"):
        config.get(ctx, "x", merge="deep")
    with pytest.raises(CommandError, match="key"):
        config.get(ctx, "")


def test_config_get_without_a_config():
    assert config.get(ExecContext(grains={"os": "Debian"}), "os") == "Debian"
    assert config.get(ExecContext(), "master", default="none") == "none"
