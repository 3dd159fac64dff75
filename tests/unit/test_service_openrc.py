"""service on OpenRC.

This machine does not boot with OpenRC, so (1) the back end's `__virtual__` must say why, (2) its parsers
are checked on real output of OpenRC 0.45 (fixtures/openrc, captured as below), and (3) the back end runs
for real against Debian's own OpenRC, unpacked (not installed) from its packages and laid over /usr and
/etc with overlay mounts in a private mount namespace, with /run a tmpfs there: `openrc default` starts an
empty default runlevel and the test services are two `openrc-run` scripts.  The host's files are not
changed.  Skipped, with the reason, where the packages cannot be fetched or the namespace cannot be made."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rx.modules import openrc_service as svc

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

NS = """set -e
mount -t overlay overlay -o lowerdir=/usr,upperdir={t}/usr-up,workdir={t}/usr-work /usr
mount -t overlay overlay -o lowerdir=/etc,upperdir={t}/etc-up,workdir={t}/etc-work /etc
mount -t tmpfs tmpfs /run
openrc default > {t}/openrc.log 2>&1
echo ready > {t}/ready
exec sleep 3600
"""

CALL = """import json, sys
from rx.modules import CommandError, openrc_service as m
fun, args = json.loads(sys.argv[1])
try:
    print(json.dumps({"ok": getattr(m, fun)(*args)}))
except CommandError as exc:
    print(json.dumps({"error": str(exc)}))
"""


@pytest.fixture(scope="module")
def private_openrc(tmp_path_factory):
    if os.path.isdir("/run/openrc") or os.geteuid() != 0:
        pytest.skip("needs root on a machine that does not run OpenRC itself")
    if not all(shutil.which(t) for t in ("unshare", "nsenter", "apt-get", "dpkg-deb")):
        pytest.skip("needs unshare, nsenter, apt-get and dpkg-deb")
    t = tmp_path_factory.mktemp("openrc")
    os.chmod(t, 0o755)  # apt's download user must write here
    p = subprocess.run(["apt-get", "download", "openrc", "librc1", "libeinfo1"], cwd=t, capture_output=True,
                       text=True, timeout=300)
    debs = list(t.glob("*.deb"))
    if p.returncode != 0 or len(debs) != 3:
        pytest.skip(f"cannot fetch Debian's openrc packages: {p.stderr.strip()[-300:]}")
    for deb in debs:
        subprocess.run(["dpkg-deb", "-x", str(deb), str(t / "root")], check=True, timeout=60)
    for d in ("usr-up/lib", "usr-work", "etc-up/init.d", "etc-work"):
        (t / d).mkdir(parents=True)
    shutil.copytree(t / "root/lib", t / "usr-up/lib", symlinks=True, dirs_exist_ok=True)
    shutil.copytree(t / "root/sbin", t / "usr-up/sbin", symlinks=True)
    shutil.copytree(t / "root/bin", t / "usr-up/bin", symlinks=True)
    shutil.copytree(t / "root/etc/runlevels", t / "etc-up/runlevels", symlinks=True)
    shutil.copy(t / "root/etc/rc.conf", t / "etc-up/rc.conf")
    secs = {n: 700000 + secrets.randbelow(99999) for n in ("rxdemo", "rxother")}
    for name, s in secs.items():
        (t / "etc-up/init.d" / name).write_text(SCRIPT.format(name=name, secs=s))
        (t / "etc-up/init.d" / name).chmod(0o755)
    (t / "ns.sh").write_text(NS.format(t=t))
    holder = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", str(t / "ns.sh")],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not (t / "ready").exists() and holder.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if not (t / "ready").exists():
            holder.kill()
            pytest.skip(f"cannot set up OpenRC in a mount namespace: {holder.communicate()[1][-300:]}")

        def call(fun: str, *args):
            p = subprocess.run(["nsenter", "-t", str(holder.pid), "-m", sys.executable, "-c", CALL,
                                json.dumps([fun, list(args)])], capture_output=True, text=True, timeout=120)
            assert p.returncode == 0, p.stderr
            return json.loads(p.stdout)
        yield call, secs
    finally:
        holder.kill()
        holder.wait(timeout=30)
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
