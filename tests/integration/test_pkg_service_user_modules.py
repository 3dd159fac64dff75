"""pkg, service, user and group through a real minion on this machine: the back end chosen by
`__virtual__` answers (apt/dpkg, init scripts), the minion's `service_init_dir` setting reaches the service
functions, and failures come back as a clear message with retcode 1."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess

import pytest

from rx.client.local import LocalClient

SCRIPT = """#!/bin/sh
PIDFILE={state}/rxsvc.pid
running() {{ [ -f $PIDFILE ] && kill -0 "$(cat $PIDFILE)" 2>/dev/null; }}
case "$1" in
  start) running || {{ sleep {secs} & echo $! > $PIDFILE; }} ;;
  stop) running && kill "$(cat $PIDFILE)"; rm -f $PIDFILE ;;
  status) running ;;
  *) exit 2 ;;
esac
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="the minion reads the dpkg database and runs init scripts as root")
def test_pkg_service_user_group_through_a_minion(sandbox, tmp_path, monkeypatch):
    apt_conf = tmp_path / "apt.conf"
    apt_conf.write_text('DPkg::Lock::Timeout "600";\n')  # other work on this machine may be running apt-get
    monkeypatch.setenv("APT_CONFIG", str(apt_conf))
    initd = tmp_path / "etc" / "init.d"
    initd.mkdir(parents=True)
    secs = 800000 + secrets.randbelow(99999)
    (initd / "rxsvc").write_text(SCRIPT.format(state=tmp_path, secs=secs))
    (initd / "rxsvc").chmod(0o755)
    bash = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "bash"], capture_output=True, text=True,
                          timeout=30).stdout
    sandbox.start_master()
    sandbox.start_minion("m1", service_init_dir=str(initd))
    try:
        with LocalClient(cfg=sandbox.cfg) as c:
            assert c.cmd("m1", "pkg.version", ["bash"]) == {"m1": bash}
            assert c.cmd("m1", "pkg.version", ["bash", "rx-no-such-package"]) == {
                "m1": {"bash": bash, "rx-no-such-package": ""}}
            r = c.cmd("m1", "pkg.install", ["rx-no-such-package"], full_return=True, timeout=120)["m1"]
            assert r["retcode"] == 1 and "Unable to locate package rx-no-such-package" in r["ret"], r
            assert "Traceback" not in r["ret"]

            root = c.cmd("m1", "user.info", ["root"])["m1"]
            assert root["uid"] == 0 and root["home"] == "/root" and "root" in root["groups"]
            assert c.cmd("m1", "group.info", ["root"])["m1"]["gid"] == 0
            r = c.cmd("m1", "user.add", ["-o"], full_return=True)["m1"]
            assert r["retcode"] == 1 and "user name must be" in r["ret"]

            assert c.cmd("m1", "service.get_all") == {"m1": ["rxsvc"]}
            assert c.cmd("m1", "service.available", ["rxsvc"]) == {"m1": True}
            assert c.cmd("m1", "service.start", ["rxsvc"]) == {"m1": True}
            # the job has ended; the daemon it started lives on (its own session, not the job's group)
            assert c.cmd("m1", "service.status", ["rxsvc"]) == {"m1": True}
            assert c.cmd("m1", "service.stop", ["rxsvc"]) == {"m1": True}
            assert c.cmd("m1", "service.status", ["rxsvc"]) == {"m1": False}
            r = c.cmd("m1", "service.start", ["nosuch"], full_return=True)["m1"]
            assert r["retcode"] == 1 and "no executable init script" in r["ret"]
            r = c.cmd("m1", "service.show", ["rxsvc"], full_return=True)["m1"]
            assert r["retcode"] == 0 and r["ret"]["script"] == str(initd / "rxsvc")
    finally:
        try:
            os.kill(int((tmp_path / "rxsvc.pid").read_text()), signal.SIGKILL)
        except (OSError, ValueError):
            pass
