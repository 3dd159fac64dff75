"""service on systemd.

This container is not booted with systemd, so (1) the back end's `__virtual__` must say why, (2) its
parsers are checked on real systemctl output kept in fixtures/systemd (see the README there), and (3) the
whole back end runs for real against a private systemd this file boots in its own pid and mount namespaces
(its units in a tmpfs over /etc/systemd/system, nothing of the host's started; `container=` set so that its
shutdown path would not touch the host, and ended with SIGKILL, which ends the namespace).  Where that
cannot be done (no unshare, no privileges, or a host that runs systemd itself) the live test is skipped with
the reason."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from rx.modules import systemd_service as svc
from tests.unit.namespaces import call_in, require_namespace_tools

FIXTURES = Path(__file__).parent / "fixtures" / "systemd"


def test_virtual_reason_on_this_machine():
    verdict = svc.__virtual__()
    if os.path.isdir("/run/systemd/system"):
        assert verdict is True
    else:
        assert verdict[0] is False and "/run/systemd/system does not exist" in verdict[1]
        with open("/proc/1/comm") as f:
            assert repr(f.read().strip()) in verdict[1]


def test_parse_show_real_output():
    props = svc.parse_show((FIXTURES / "show_rxdemo.txt").read_text())
    assert props["Id"] == "rxdemo.service" and props["ActiveState"] == "active" and props["SubState"] == "running"
    assert props["UnitFileState"] == "enabled" and props["LoadState"] == "loaded" and int(props["MainPID"]) > 0
    assert props["ExecStart"]["path"] == "/bin/sleep" and props["ExecStart"]["argv[]"] == "/bin/sleep 6000"
    assert props["ExecReload"]["argv[]"] == "/bin/kill -HUP $MAINPID"
    assert "network.target" in props["After"] and props["Names"] == ["rxdemo.service"]
    assert props["Description"] == "rx demo daemon" and props["FragmentPath"] == "/etc/systemd/system/rxdemo.service"
    missing = svc.parse_show((FIXTURES / "show_notfound.txt").read_text())
    assert missing["LoadState"] == "not-found" and missing["ActiveState"] == "inactive"
    two = svc.parse_show("ExecReload={ path=/usr/sbin/sshd ; argv[]=/usr/sbin/sshd -t ; ignore_errors=no }\n"
                         "ExecReload={ path=/bin/kill ; argv[]=/bin/kill -HUP $MAINPID ; ignore_errors=no }\n")
    assert [r["path"] for r in two["ExecReload"]] == ["/usr/sbin/sshd", "/bin/kill"]


def test_parse_unit_lists_real_output():
    files = svc.parse_unit_files((FIXTURES / "list_unit_files.txt").read_text())
    assert files == {"rxdemo.service": "enabled", "rxfail.service": "static", "rxoneshot.service": "static",
                     "rxtpl@.service": "static"}
    debian = svc.parse_unit_files((FIXTURES / "list_unit_files_debian12.txt").read_text())
    assert debian["postgresql.service"] == "enabled" and debian["apt-daily.service"] == "static"
    assert debian["getty@.service"] == "enabled" and len(debian) == 107
    expected = {"rxdemo.service": ("active", "running"), "rxfail.service": ("failed", "failed"),
                "rxoneshot.service": ("active", "exited"), "rxtpl@one.service": ("active", "running")}
    for name in ("list_units_all.txt", "list_units_all_bullets.txt"):  # with and without --plain
        units = svc.parse_units((FIXTURES / name).read_text())
        assert {u: (v["active"], v["sub"]) for u, v in units.items()} == expected
        assert units["rxtpl@one.service"]["description"] == "rx template one"
    running = svc.parse_units((FIXTURES / "list_units_running.txt").read_text())
    assert sorted(running) == ["rxdemo.service", "rxtpl@one.service"]


BOOT = """set -e
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /etc/systemd/system
cd /etc/systemd/system
for t in rx-boot sysinit basic shutdown network multi-user; do printf '[Unit]\\nDescription=%s\\n' "$t" > $t.target; done
printf '[Unit]\\nDescription=System Slice\\n' > system.slice
cat > rxdemo.service <<'U'
[Unit]
Description=rx demo daemon
[Service]
ExecStart=/bin/sh -c 'trap "" HUP; exec /bin/sleep 6000'
ExecReload=/bin/kill -HUP $MAINPID
[Install]
WantedBy=multi-user.target
U
cat > rxfail.service <<'U'
[Unit]
Description=rx failing service
[Service]
Type=oneshot
ExecStart=/bin/false
U
cat > rxtpl@.service <<'U'
[Unit]
Description=rx template %i
[Service]
ExecStart=/bin/sleep 6000
U
export SYSTEMD_UNIT_PATH=/etc/systemd/system:/run/systemd/system container=rx-test
exec /lib/systemd/systemd --system --unit=rx-boot.target
"""

def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def _remove_cgroups(paths: list[str]) -> None:
    """rmdir the (empty, once systemd is dead) cgroups the private systemd made, deepest first."""
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        for rel in paths:
            top = hierarchy / rel.lstrip("/")
            if rel.strip("/") and top.is_dir():
                for d, _, _ in sorted(os.walk(top), key=lambda w: -len(w[0])):
                    try:
                        os.rmdir(d)
                    except OSError:
                        pass


@pytest.fixture(scope="module")
def private_systemd(tmp_path_factory):
    if os.path.isdir("/run/systemd/system"):
        pytest.skip("the host runs systemd: this test boots a private systemd only where systemd is not PID 1")
    require_namespace_tools()
    if not os.path.exists("/lib/systemd/systemd"):
        pytest.skip("needs /lib/systemd/systemd")
    tmp = tmp_path_factory.mktemp("systemd")
    (tmp / "boot.sh").write_text(BOOT)
    log = open(tmp / "log", "w+")
    proc = subprocess.Popen(["unshare", "--pid", "--fork", "--mount", "--uts", "--ipc", "--propagation", "private",
                             "--mount-proc", "sh", str(tmp / "boot.sh")], stdout=log, stderr=log,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    pid, state, deadline = 0, "", time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None and state not in ("running", "degraded"):
        kids = _children(proc.pid)
        pid = kids[0] if kids else 0
        if pid:
            state = subprocess.run(["nsenter", "-t", str(pid), "-m", "-p", "systemctl", "is-system-running"],
                                   capture_output=True, text=True, timeout=10).stdout.strip()
        time.sleep(0.1)
    cgroups = []
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            cgroups = sorted({line.strip().split(":", 2)[2] for line in f})
    except OSError:
        pass
    try:
        if state not in ("running", "degraded"):
            log.seek(0)
            pytest.skip(f"cannot boot a private systemd here (state {state!r}): {log.read()[-500:]}")

        yield lambda fun, *args: call_in(pid, "systemd_service", fun, *args, pid_ns=True)
    finally:
        if pid:
            os.kill(pid, signal.SIGKILL)  # PID 1 of the namespace: every process in it dies with it
        proc.wait(timeout=30)
        log.close()
        _remove_cgroups([c.removesuffix("/init.scope") + "/init.scope" for c in cgroups if c.endswith("init.scope")]
                        + [c.removesuffix("/init.scope") + "/system.slice" for c in cgroups
                           if c.endswith("init.scope")])


def test_systemd_back_end_live(private_systemd):
    call = private_systemd
    assert call("__virtual__") == {"ok": True}
    assert call("available", "rxdemo") == {"ok": True} and call("available", "nosuch") == {"ok": False}
    assert call("missing", "nosuch") == {"ok": True}
    assert call("status", "rxdemo") == {"ok": False}
    assert call("start", "rxdemo") == {"ok": True}
    assert call("status", "rxdemo") == {"ok": True}
    assert "rxdemo" in call("get_running")["ok"]
    shown = call("show", "rxdemo")["ok"]
    assert shown["ActiveState"] == "active" and shown["ExecStart"]["path"] == "/bin/sh"
    pid = shown["MainPID"]
    assert call("reload", "rxdemo") == {"ok": True}
    assert call("show", "rxdemo")["ok"]["MainPID"] == pid  # reloaded, not restarted
    assert call("restart", "rxdemo") == {"ok": True}
    assert call("show", "rxdemo")["ok"]["MainPID"] not in (pid, "0")
    assert call("status", "rx*") == {"ok": {"rxdemo": True, "rxfail": False}}
    assert call("stop", "rxdemo") == {"ok": True} and call("status", "rxdemo") == {"ok": False}

    assert call("enabled", "rxdemo") == {"ok": False} and call("disabled", "rxdemo") == {"ok": True}
    assert call("enable", "rxdemo") == {"ok": True}
    assert call("enabled", "rxdemo") == {"ok": True} and "rxdemo" in call("get_enabled")["ok"]
    assert call("disable", "rxdemo") == {"ok": True}
    assert call("enabled", "rxdemo") == {"ok": False} and "rxdemo" in call("get_disabled")["ok"]
    everything = call("get_all")["ok"]
    assert {"rxdemo", "rxfail"} <= set(everything) and "rxtpl@" not in everything

    assert call("start", "rxtpl@one") == {"ok": True} and call("status", "rxtpl@one") == {"ok": True}
    failed = call("start", "rxfail")
    assert "systemctl start rxfail.service failed" in failed["error"] and "control process exited" in failed["error"]
    assert "not found" in call("start", "nosuch")["error"]
    assert "name must be" in call("start", "-x")["error"]
