"""Grains through real daemons: grains.items agrees with the host, grains.setval persists and is
targetable at once (the master's cache is refreshed before the return), filter_by, and a custom
grains module synced into a minion's extmods."""

from __future__ import annotations

import json
import os
import platform
import subprocess

from rx.client.local import LocalClient
from tests.unit.test_grains_host import ISSUE_KEYS


def rx(box, *args: str):
    return box.run_cli("rx", *args, "--out", "json")


def jout(r) -> dict:
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    return json.loads(r.stdout)


def sh(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=10).stdout.strip()


def test_grains_items_agree_with_the_host(fleet):
    with LocalClient(cfg=fleet.cfg) as c:
        g = c.cmd("m1", "grains.items")["m1"]
        assert c.cmd("m1", "grains.get", ["locale_info:timezone"])["m1"] == g["locale_info"]["timezone"]
    assert sorted(set(ISSUE_KEYS) - set(g)) == []
    assert (g["id"], g["master"]) == ("m1", "127.0.0.1")
    assert g["fqdn"] == sh("hostname", "-f")
    assert (g["kernel"], g["kernelrelease"], g["cpuarch"]) == (sh("uname", "-s"), sh("uname", "-r"), sh("uname", "-m"))
    rel = platform.freedesktop_os_release()
    assert g["osrelease"] == rel.get("VERSION_ID", "") and g["osfullname"] == rel["NAME"]
    assert g["num_cpus"] == os.cpu_count() and "127.0.0.1" in g["ipv4"]
    with open("/proc/meminfo") as f:
        assert g["mem_total"] == int(f.readline().split()[1]) // 1024
    family = g["os_family"]
    out = jout(rx(fleet, "m1", "grains.filter_by", f"{{{family}: mine, Other: theirs, default: fallback}}"))
    assert out == {"m1": "mine"}
    out = jout(rx(fleet, "m1", "grains.filter_by", "{Other: theirs, default: {a: 1}}", "os_family", "{b: 2}"))
    assert out == {"m1": {"a": 1, "b": 2}}


def test_setval_persists_and_targets_at_once(fleet):
    assert jout(rx(fleet, "m1", "grains.setval", "newgrain", "value")) == {"m1": {"newgrain": "value"}}
    # no grains.refresh: the minion sent its grains to the master before the return of setval
    assert jout(rx(fleet, "-G", "newgrain:value", "test.ping")) == {"m1": True}
    assert jout(rx(fleet, "m1", "grains.append", "roles", "db")) == {"m1": {"roles": ["db"]}}
    assert jout(rx(fleet, "-G", "roles:db", "test.ping")) == {"m1": True}
    assert "newgrain: value" in (fleet.minion_dir("m1") / "grains").read_text()

    assert fleet.minions["m1"].stop() == 0
    fleet.start_minion("m1")
    assert jout(rx(fleet, "m1", "grains.get", "newgrain")) == {"m1": "value"}
    assert jout(rx(fleet, "-G", "newgrain:value", "test.ping")) == {"m1": True}

    assert jout(rx(fleet, "m1", "grains.delkey", "newgrain"))["m1"]["result"] is True
    gone = rx(fleet, "-G", "newgrain:value", "test.ping")
    assert gone.returncode == 4 and json.loads(gone.stdout) == {}, "the master's cache no longer has the grain"


def test_a_custom_grains_module_in_extmods(fleet):
    cachedir = fleet.minion_dir("m2") / "root" / "var" / "cache" / "rx" / "minion"
    mods = cachedir / "extmods" / "grains"
    mods.mkdir(parents=True)
    (mods / "site.py").write_text("def site(grains):\n    return {'site': 'lab-' + grains['id']}\n")
    assert jout(rx(fleet, "m2", "grains.refresh"))["m2"]["site"] == "lab-m2"
    assert jout(rx(fleet, "-G", "site:lab-*", "test.ping")) == {"m2": True}
