"""ps.*: on this machine, with processes this test starts (found, signalled, and seen gone), and
the figures compared with what the kernel says through os and /proc."""

from __future__ import annotations

import datetime
import os
import pwd
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rx.modules import CommandError, ps

MARK = "3600.125"  # an argument no other process has: `sleep 3600.125`


@pytest.fixture
def sleeper():
    proc = subprocess.Popen(["sleep", MARK])
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def _wait_for_state(pid: int, state: str, deadline: float = 10.0) -> None:
    end = time.monotonic() + deadline
    while _state(pid) != state:
        assert time.monotonic() < end, f"process {pid} never reached state {state}"
        time.sleep(0.01)


def test_available_here_without_loading_psutil_at_import():
    assert ps.__virtual__() is True
    code = ("import sys; from rx.minion.registry import Registry; r = Registry(); r.functions(); "
            "assert not {'ps', 'status', 'disk', 'network'} & set(r.unavailable()), r.unavailable(); "
            "print('psutil' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_pgrep_finds_our_sleep(sleeper):
    me = pwd.getpwuid(os.getuid()).pw_name
    assert sleeper.pid in ps.pgrep("sleep")
    assert ps.pgrep(MARK, full=True) == [sleeper.pid]
    assert ps.pgrep(r"sleep 3600\.12[0-9]$", full=True, pattern_is_regex=True) == [sleeper.pid]
    assert ps.pgrep(MARK, user=me, full=True) == [sleeper.pid]
    assert ps.pgrep(MARK, user="no-such-user-rx", full=True) is None
    assert ps.pgrep(MARK) is None  # the name is "sleep": the argument is only in the full command line


def test_pgrep_refuses_bad_patterns():
    with pytest.raises(CommandError, match="regular expression"):
        ps.pgrep("(", pattern_is_regex=True)
    with pytest.raises(CommandError, match="non-empty"):
        ps.pgrep("")


def test_pkill_ends_it(sleeper):
    assert ps.pkill(MARK, full=True) == {"killed": [sleeper.pid]}
    assert sleeper.wait(timeout=30) == -signal.SIGTERM
    assert ps.pgrep(MARK, full=True) is None
    assert ps.pkill(MARK, full=True) is None


def test_pkill_spares_the_calling_process():
    marker = "rx-spare-me-7781"
    code = f"from rx.modules import ps; print(ps.pkill({marker!r}, full=True))"
    out = subprocess.run([sys.executable, "-c", code, marker], capture_output=True, text=True, timeout=60)
    assert (out.returncode, out.stdout.strip()) == (0, "None"), out.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another user")
def test_pkill_says_which_it_may_not_signal(sleeper):
    """A forked child turned nobody (no exec: the interpreter may not be readable by nobody) runs pkill."""
    import psutil  # noqa: F401 (loaded before the fork, as the job's process would have it)
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user nobody here")
    read, write = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            try:
                message = repr(ps.pkill(MARK, full=True))
            except CommandError as exc:
                message = str(exc)
            os.write(write, message.encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as f:
        message = f.read()
    os.waitpid(child, 0)
    assert message == f"not permitted to signal [{sleeper.pid}]; signalled []"
    assert sleeper.poll() is None


def test_kill_pid_with_a_signal_name_and_number(sleeper):
    assert ps.kill_pid(sleeper.pid, signal="STOP") is True
    _wait_for_state(sleeper.pid, "T")
    assert {"pid": sleeper.pid, "name": "sleep"} in ps.status("stopped")
    assert ps.kill_pid(sleeper.pid, signal=9) is True
    assert sleeper.wait(timeout=30) == -signal.SIGKILL
    assert not Path(f"/proc/{sleeper.pid}").exists()
    assert ps.kill_pid(sleeper.pid) is False


def test_kill_pid_refuses_bad_arguments():
    for kwargs, message in (({"pid": "x"}, "pid must be"), ({"pid": 0}, "at least 1"),
                            ({"pid": 1, "signal": "NOPE"}, "unknown signal"),
                            ({"pid": 1, "signal": 999}, "unknown signal")):
        with pytest.raises(CommandError, match=message):
            ps.kill_pid(**kwargs)


def test_status_lists_sleeping_processes(sleeper):
    _wait_for_state(sleeper.pid, "S")
    assert {"pid": sleeper.pid, "name": "sleep"} in ps.status("sleeping")
    assert isinstance(ps.status("disk_sleep"), list)  # Salt's spelling of disk-sleep
    with pytest.raises(CommandError, match="status must be one of"):
        ps.status("napping")


def test_proc_info_of_ourselves():
    assert ps.proc_info(os.getpid(), attrs=["pid", "ppid"]) == {"pid": os.getpid(), "ppid": os.getppid()}
    assert ps.proc_info(os.getpid(), attrs="pid,name")["name"] == Path("/proc/self/comm").read_text().strip()
    assert "cmdline" in ps.proc_info(os.getpid())
    with pytest.raises(CommandError, match="attrs"):
        ps.proc_info(os.getpid(), attrs=["no_such_attr"])


def test_proc_info_of_a_gone_process():
    gone = subprocess.Popen(["true"])
    gone.wait()
    with pytest.raises(CommandError, match=f"no process with pid {gone.pid}"):
        ps.proc_info(gone.pid)


def test_top_ranks_a_busy_process_above_an_idle_one(sleeper):
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        ranked = ps.top(num_processes=100_000, interval=0.5)
    finally:
        busy.kill()
        busy.wait()
    pids = [p["pid"] for p in ranked]
    assert pids.index(busy.pid) < pids.index(sleeper.pid)
    entry = ranked[pids.index(sleeper.pid)]
    assert entry["cmd"] == ["sleep", MARK] and entry["user"] == pwd.getpwuid(os.getuid()).pw_name
    assert {"user", "system"} <= set(entry["cpu"]) and {"rss", "vms"} <= set(entry["mem"])
    assert len(ps.top(2, interval=0)) == 2
    with pytest.raises(CommandError, match="interval"):
        ps.top(interval=-1)


def test_cpu_percent():
    assert 0.0 <= ps.cpu_percent(interval=0.05) <= 100.0
    per_cpu = ps.cpu_percent(interval=0.05, per_cpu=True)
    assert len(per_cpu) == os.cpu_count() and all(0.0 <= p <= 100.0 for p in per_cpu)
    with pytest.raises(CommandError, match="interval"):
        ps.cpu_percent(interval="soon")


def test_memory_figures_are_the_kernels():
    assert ps.virtual_memory()["total"] == os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    assert ps.swap_memory()["total"] == int(meminfo["SwapTotal"].split()[0]) * 1024


def test_disk_usage_is_statvfs(tmp_path):
    st = os.statvfs("/")
    assert ps.disk_usage("/")["total"] == st.f_blocks * st.f_frsize
    with pytest.raises(CommandError, match="absolute"):
        ps.disk_usage("relative/path")
    with pytest.raises(CommandError, match="cannot stat"):
        ps.disk_usage(str(tmp_path / "missing"))


def test_boot_time_is_btime():
    btime = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                 if line.startswith("btime"))
    assert ps.boot_time() == btime
    assert ps.boot_time(time_format="%Y-%m-%d") == datetime.datetime.fromtimestamp(btime).strftime("%Y-%m-%d")


def test_num_cpus():
    assert ps.num_cpus() == os.cpu_count()
