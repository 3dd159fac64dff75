"""service on OpenRC.

This machine does not boot with OpenRC, so (1) the back end's `__virtual__` must say why, (2) its parsers
are checked on real output of OpenRC 0.45 (fixtures/openrc, captured as below), and (3) the back end runs
for real against Debian's own OpenRC, unpacked (not installed) from its packages and laid over /usr and
/etc with overlay mounts in a private mount namespace, with /run a tmpfs there: `openrc default` starts an
empty default runlevel and the test services are two `openrc-run` scripts.  The host's files are not
changed.  Skipped, with the reason, where the packages cannot be fetched or the namespace cannot be made."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest

from rx.modules import openrc_service as svc
from tests.unit.namespaces import OverlayNamespace, require_namespace_tools

FIXTURES = Path(__file__).parent / "fixtures" / "openrc"


def test_virtual_reason_on_this_machine():
    verdict = svc.__virtual__()
    if os.path.isdir("/run/openrc"):
        pytest.skip("this machine runs OpenRC")
    assert verdict == (False, "OpenRC is not the init system here (/run/openrc does not exist)")


def test_parsers_on_real_output():
    levels = svc.parse_rc_update((FIXTURES / "rc-update_show_v.txt").read_text())
    assert levels == {"dbus": [], "hwclock.sh": [], "postgresql": [], "procps": [], "rxdemo": ["default"],
                      "rxother": ["boot"], "x11-common": []}
    assert svc.parse_servicelist((FIXTURES / "rc-status_servicelist.txt").read_text()) == {
        "rxother": "stopped", "rxdemo": "started"}
    assert svc.parse_servicelist((FIXTURES / "rc-status_a.txt").read_text()) == {
        "rxother": "stopped", "rxdemo": "started"}
    assert svc.parse_rc_update("  sshd | boot default\n") == {"sshd": ["boot", "default"]}


SCRIPT = """#!/sbin/openrc-run
description="rx test daemon"
command=/bin/sleep
command_args={secs}
command_background=true
pidfile=/run/{name}.pid
"""

@pytest.fixture(scope="module")
def private_openrc(tmp_path_factory):
    if os.path.isdir("/run/openrc"):
        pytest.skip("this machine runs OpenRC itself")
    require_namespace_tools()
    if not all(shutil.which(t) for t in ("apt-get", "dpkg-deb")):
        pytest.skip("needs apt-get and dpkg-deb")
    t = tmp_path_factory.mktemp("openrc")
    os.chmod(t, 0o755)  # apt's download user must write here
    p = subprocess.run(["apt-get", "download", "openrc", "librc1", "libeinfo1"], cwd=t, capture_output=True,
                       text=True, timeout=300)
    debs = list(t.glob("*.deb"))
    if p.returncode != 0 or len(debs) != 3:
        pytest.skip(f"cannot fetch Debian's openrc packages: {p.stderr.strip()[-300:]}")
    for deb in debs:
        subprocess.run(["dpkg-deb", "-x", str(deb), str(t / "root")], check=True, timeout=60)
    for src, dst in (("lib", "up/usr/lib"), ("sbin", "up/usr/sbin"), ("bin", "up/usr/bin"),
                     ("etc/runlevels", "up/etc/runlevels")):
        shutil.copytree(t / "root" / src, t / dst, symlinks=True, dirs_exist_ok=True)
    shutil.copy(t / "root/etc/rc.conf", t / "up/etc/rc.conf")
    (t / "up/etc/init.d").mkdir()
    secs = {n: 700000 + secrets.randbelow(99999) for n in ("rxdemo", "rxother")}
    for name, s in secs.items():
        (t / "up/etc/init.d" / name).write_text(SCRIPT.format(name=name, secs=s))
        (t / "up/etc/init.d" / name).chmod(0o755)
    ns = OverlayNamespace(t, ("usr", "etc"), "openrc default", ready_within=60)
    try:
        if not ns.ready:
            pytest.skip(f"cannot set up OpenRC in a mount namespace: {ns.why_not()}")
        yield (lambda fun, *args: ns.call("openrc_service", fun, *args)), secs
    finally:
        ns.close()
        for s in secs.values():
            subprocess.run(["pkill", "-f", f"^/bin/sleep {s}$"], timeout=30)


def test_openrc_back_end_live(private_openrc):
    call, secs = private_openrc
    assert call("__virtual__") == {"ok": True}
    assert {"rxdemo", "rxother"} <= set(call("get_all")["ok"])
    assert call("available", "rxdemo") == {"ok": True} and call("missing", "nosuch") == {"ok": True}
    assert call("status", "rxdemo") == {"ok": False}
    assert call("start", "rxdemo") == {"ok": True}
    assert call("status", "rxdemo") == {"ok": True} and call("get_running")["ok"] == ["rxdemo"]
    assert call("status", "rx*") == {"ok": {"rxdemo": True, "rxother": False}}
    assert call("status", "x", f"^/bin/sleep {secs['rxdemo']}$") == {"ok": True}
    assert call("restart", "rxdemo") == {"ok": True} and call("status", "rxdemo") == {"ok": True}
    assert call("stop", "rxdemo") == {"ok": True} and call("status", "rxdemo") == {"ok": False}
    assert "rc-service nosuch start failed" in call("start", "nosuch")["error"]

    assert call("enabled", "rxdemo") == {"ok": False} and call("disabled", "rxdemo") == {"ok": True}
    assert call("enable", "rxdemo") == {"ok": True}
    assert call("enabled", "rxdemo") == {"ok": True} and call("get_enabled")["ok"] == ["rxdemo"]
    assert call("enable", "rxother", "boot,default") == {"ok": True}
    assert call("enabled", "rxother", ["boot", "default"]) == {"ok": True}
    assert call("show", "rxother")["ok"] == {"name": "rxother", "running": False, "enabled": True,
                                             "runlevels": ["boot", "default"]}
    assert call("disable", "rxother", "boot") == {"ok": True}
    assert call("show", "rxother")["ok"]["runlevels"] == ["default"]
    assert call("disable", "rxother") == {"ok": True} and call("disable", "rxdemo") == {"ok": True}
    assert call("get_enabled") == {"ok": []} and {"rxdemo", "rxother"} <= set(call("get_disabled")["ok"])
