"""status.*: parsers on output captured from a real machine (tests/unit/data/sysinfo), and every
function on this machine, compared with what the system itself says."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rx.modules import CommandError, status

DATA = Path(__file__).parent / "data" / "sysinfo"


def data(name: str) -> str:
    return (DATA / name).read_text()


# --- parsers, on captured output ------------------------------------------------------------

@pytest.mark.parametrize("key, expected", [
    ("MemTotal", {"value": "24684084", "unit": "kB"}),
    ("HugePages_Total", {"value": "0"}),
    ("Active(anon)", {"value": "1556", "unit": "kB"}),
])
def test_parse_meminfo(key, expected):
    assert status._parse_meminfo(data("proc_meminfo"))[key] == expected


def test_parse_cpuinfo_is_flat_with_flags_a_list():
    info = status._parse_cpuinfo(data("proc_cpuinfo"))
    assert info["processor"] == "1" and info["model name"] == "AMD EPYC" and info["cpu cores"] == "2"
    assert info["flags"][:3] == ["fpu", "vme", "de"] and "sse2" in info["flags"]
    assert info["power management"] == ""


def test_parse_cpustats():
    stats = status._parse_cpustats(data("proc_stat"))
    assert stats["cpu"] == {"user": 1182199, "nice": 0, "system": 504531, "idle": 1636499, "iowait": 7059,
                            "irq": 0, "softirq": 12143, "steal": 2857}
    assert set(stats["cpu0"]) == set(stats["cpu"]) and "cpu1" in stats and "cpu2" not in stats
    assert stats["btime"] == 1796130306 and stats["procs_running"] == 2
    assert stats["intr"]["total"] == 20170680 and stats["intr"]["irqs"][:3] == [0, 0, 0]
    assert stats["softirq"]["total"] == sum(stats["softirq"]["softirqs"])


def test_parse_diskstats():
    stats = status._parse_diskstats(data("proc_diskstats"))
    assert sorted(stats) == ["loop0", "vda", "zram0"]
    assert stats["vda"] == {"major": 254, "minor": 0, "device": "vda", "reads_issued": 214914, "reads_merged": 17888,
                            "sectors_read": 5312698, "ms_spent_reading": 300239, "writes_completed": 736667,
                            "writes_merged": 922469, "sectors_written": 48956888, "ms_spent_writing": 388002,
                            "io_in_progress": 0, "ms_spent_in_io": 227676, "weighted_ms_spent_in_io": 824039}


def test_parse_netdev():
    dev = status._parse_netdev(data("proc_net_dev"))
    assert sorted(dev) == ["eth0", "ifb0", "ifb1", "lo"]
    assert dev["lo"]["iface"] == "lo" and dev["lo"]["rx_bytes"] == dev["lo"]["tx_bytes"] == 71640861809
    assert dev["lo"]["rx_drop"] == 1140 and len(dev["lo"]) == 17


def test_parse_netstats():
    stats = status._parse_netstats(data("proc_net_netstat"))
    assert set(stats) == {"TcpExt", "IpExt", "MPTcpExt"}
    assert stats["TcpExt"]["SyncookiesSent"] == 4606 and stats["IpExt"]["InNoRoutes"] == 0


@pytest.mark.parametrize("name, expected", [
    ("w.txt", [{"user": "root", "tty": "pts/0", "from": "203.0.113.9", "login": "16:45", "idle": "0.00s",
                "jcpu": "0.00s", "pcpu": "?", "what": "sleep 30"}]),
    ("w_nofrom.txt", [{"user": "root", "tty": "pts/0", "login": "16:45", "idle": "0.00s", "jcpu": "0.00s",
                       "pcpu": "?", "what": "sleep 30"}]),
])
def test_parse_w(name, expected):
    assert status._parse_w(data(name)) == expected


def test_parse_w_without_users_and_garbage():
    assert status._parse_w(" 17:43:10 up  4:38,  0 user,  load average: 2.54, 4.67, 5.81\n"
                           "USER     TTY      FROM             LOGIN@   IDLE   JCPU   PCPU WHAT\n") == []
    with pytest.raises(CommandError, match="unexpected output"):
        status._parse_w("w: something broke\n")


# --- on this machine ------------------------------------------------------------------------

def test_loadavg_is_the_kernels():
    before = os.getloadavg()
    ours = status.loadavg()
    after = os.getloadavg()
    assert set(ours) == {"1-min", "5-min", "15-min"}
    assert tuple(ours.values()) in (before, after)


def test_meminfo_total_is_the_physical_memory():
    total = status.meminfo()["MemTotal"]
    assert total["unit"] == "kB"
    assert int(total["value"]) * 1024 == os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def test_cpustats_and_cpuinfo_agree_on_the_cpus():
    cpus = [k for k in status.cpustats() if k.startswith("cpu") and k != "cpu"]
    processors = [line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("processor")]
    assert len(cpus) == len(processors) >= 1
    info = status.cpuinfo()
    assert info["processor"] == processors[-1].split(":")[1].strip()


def test_uptime_matches_proc_uptime():
    before = float(Path("/proc/uptime").read_text().split()[0])
    up = status.uptime()
    after = float(Path("/proc/uptime").read_text().split()[0])
    assert int(before) <= up["seconds"] <= int(after)
    assert up["days"] * 86400 <= up["seconds"] < (up["days"] + 1) * 86400
    hours, minutes = (int(x) for x in up["time"].split(":"))
    assert up["days"] * 86400 + hours * 3600 + minutes * 60 <= up["seconds"] < \
        up["days"] * 86400 + hours * 3600 + (minutes + 1) * 60
    assert abs(up["since_t"] + up["seconds"] - time.time()) < 5


def test_diskusage_of_root_is_statvfs():
    ours = status.diskusage("/")
    st = os.statvfs("/")
    assert list(ours) == ["/"] and ours["/"]["total"] == st.f_blocks * st.f_frsize
    # free space moves while other work writes; reserved blocks (f_bfree - f_bavail) would be far more
    assert abs(ours["/"]["available"] - st.f_bavail * st.f_frsize) < 64 * 2**20


def test_diskusage_by_filesystem_type_follows_proc_mounts():
    mounts = [line.split() for line in Path("/proc/mounts").read_text().splitlines()]
    fstype = next(m[2] for m in mounts if m[1] == "/")
    expected = {status._unescape_mount(m[1]) for m in mounts if m[2] == fstype}
    assert set(status.diskusage(fstype)) == expected
    assert set(status.diskusage(fstype[:-1] + "?")) >= expected
    assert status.diskusage("no-such-fstype") == {}
    assert "/" in status.diskusage()


def test_diskusage_of_a_missing_path_is_an_error():
    with pytest.raises(CommandError, match="cannot stat /no/such/dir"):
        status.diskusage("/no/such/dir")


def test_unescape_mount():
    assert status._unescape_mount(r"/tmp/mnt\040with\040space") == "/tmp/mnt with space"


def test_diskstats_lists_the_block_devices():
    stats = status.diskstats()
    assert set(stats) == set(os.listdir("/sys/class/block"))


def test_netdev_lists_the_interfaces():
    dev = status.netdev()
    assert set(dev) == {name for _, name in __import__("socket").if_nameindex()}
    assert dev["lo"]["rx_packets"] >= 0


def test_netstats_and_vmstats():
    assert "TcpExt" in status.netstats()
    vm = status.vmstats()
    assert isinstance(vm["nr_free_pages"], int)


def test_version_is_the_running_kernel():
    assert os.uname().release in status.version()
    assert status.version() == Path("/proc/version").read_text().strip()


@pytest.fixture
def sleeper():
    proc = subprocess.Popen(["sleep", "3600.25"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def test_procs_and_pid_find_a_process(sleeper):
    import pwd
    table = status.procs()
    assert table[str(sleeper.pid)] == {"user": pwd.getpwuid(os.getuid()).pw_name, "cmd": "sleep 3600.25"}
    for pid, entry in table.items():  # kernel threads have no command line: shown as [name]
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes() == b"":
                assert entry["cmd"].startswith("[") and entry["cmd"].endswith("]")
        except OSError:
            pass  # ended meanwhile
    assert status.pid(r"sleep 3600\.25") == str(sleeper.pid)
    assert status.pid(r"no such process \d{40}") == ""
    with pytest.raises(CommandError, match="regular expression"):
        status.pid("(")


def test_pid_leaves_out_the_calling_process():
    me = " ".join(Path(f"/proc/{os.getpid()}/cmdline").read_text().split("\0")).strip()
    assert str(os.getpid()) not in status.pid(__import__("re").escape(me)).split("\n")


@pytest.fixture
def login_session():
    """A login record in utmp for a pty of ours, where this test may create utmp (root, none there);
    removed afterwards.  Yields the pty name, or None where utmp is left alone."""
    utmp = Path("/run/utmp")
    if os.geteuid() != 0 or utmp.exists() or not shutil.which("w"):
        yield None
        return
    master, slave = os.openpty()
    line = os.ttyname(slave)[len("/dev/"):]
    holder = subprocess.Popen(["sleep", "3600"], stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    record = struct.pack("hi32s4s32s256shhiii4i20s", 7, holder.pid, line.encode(), line[-4:].encode(), b"root",
                         b"203.0.113.9", 0, 0, 0, int(time.time()) - 60, 0, 0, 0, 0, 0, b"")
    utmp.write_bytes(record)
    try:
        yield line
    finally:
        utmp.unlink()
        holder.kill()
        holder.wait()
        os.close(master)
        os.close(slave)


@pytest.mark.skipif(sys.platform != "linux", reason="utmp layout")
def test_w_and_uptime_users_agree_with_who(login_session):
    if not shutil.which("who"):
        pytest.skip("who is not installed")
    who = [line for line in subprocess.run(["who"], capture_output=True, text=True).stdout.splitlines() if line]
    users = status.w()
    assert len(users) == len(who) == status.uptime()["users"]
    if login_session:
        assert [(u["user"], u["tty"]) for u in users] == [("root", login_session)]
        assert users[0]["what"] == "sleep 3600"


def test_all_status_has_salts_keys():
    everything = status.all_status()
    assert set(everything) == {"cpuinfo", "cpustats", "diskstats", "diskusage", "loadavg", "meminfo", "netdev",
                               "netstats", "uptime", "vmstats", "w"}
    assert everything["meminfo"]["MemTotal"]["unit"] == "kB"


def test_all_status_without_w_on_the_path(tmp_path):
    """A host without procps' `w` (PATH holding none of its tools): status.w says so, all_status still answers."""
    code = ("import json; from rx.modules import status, CommandError\n"
            "try:\n    status.w()\nexcept CommandError as exc:\n    print(json.dumps(str(exc)))\n"
            "everything = status.all_status()\n"
            "print(json.dumps([everything['w'], 'MemTotal' in everything['meminfo']]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PATH": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    first, second = out.stdout.splitlines()
    assert "needs the w command" in first
    assert second == f'[{first}, true]'
