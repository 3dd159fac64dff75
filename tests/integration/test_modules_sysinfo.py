"""status, disk, network and ps through a real master and minion (the minion runs on this machine,
so its answers are compared with this process's view of the same system)."""

from __future__ import annotations

import os
import subprocess

from rx.client.local import LocalClient


def test_status_and_disk_through_a_minion(fleet):
    with LocalClient(cfg=fleet.cfg) as c:
        load = c.cmd("m1", "status.loadavg")["m1"]
        assert set(load) == {"1-min", "5-min", "15-min"}
        st = os.statvfs("/")
        root = c.cmd("m1", "disk.usage")["m1"]["/"]
        assert int(root["1K-blocks"]) == st.f_blocks * st.f_frsize // 1024
        assert c.cmd("m1", "disk.percent", ["/"])["m1"] == root["capacity"]
        bad = c.cmd("m1", "disk.percent", ["/no/such/mount"], full_return=True)["m1"]
        assert bad["retcode"] == 1 and "not a mount point" in bad["ret"]


def test_network_through_a_minion(fleet):
    with LocalClient(cfg=fleet.cfg) as c:
        ifaces = c.cmd("m2", "network.interfaces")["m2"]
        assert "127.0.0.1" in [a["address"] for a in ifaces["lo"]["inet"]]
        assert c.cmd("m2", "network.ip_addrs", kwarg={"include_loopback": True, "cidr": "127.0.0.0/8"}) == \
            {"m2": ["127.0.0.1"]}
        assert c.cmd("m2", "network.get_hostname") == {"m2": os.uname().nodename}


def test_ps_finds_and_kills_a_process_through_a_minion(fleet):
    proc = subprocess.Popen(["sleep", "3600.375"])
    try:
        with LocalClient(cfg=fleet.cfg) as c:
            assert c.cmd("m1", "ps.pgrep", ["3600.375"], kwarg={"full": True}) == {"m1": [proc.pid]}
            assert c.cmd("m1", "ps.kill_pid", [proc.pid], kwarg={"signal": "KILL"}) == {"m1": True}
            assert proc.wait(timeout=30) == -9
            assert c.cmd("m1", "ps.pgrep", ["3600.375"], kwarg={"full": True}) == {"m1": None}
            funcs = c.cmd("m1", "sys.list_functions", ["ps.*"])["m1"]
            assert {"ps.top", "ps.pgrep", "ps.pkill", "ps.kill_pid", "ps.status"} <= set(funcs)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
