"""Faults around a minion's jobs, injected into real daemons (issue #9 items 2, 5 and 6):

- the master goes away (SIGTERM, or kill -9 of its whole process tree) while a job runs: the
  minion keeps the return in its on-disk spool, retries for longer than the old 6-attempt window,
  across a minion restart too, and the master stores the return once it is back;
- the spool is bounded: past the bound the oldest return is dropped, with a warning;
- a minion stopped with SIGTERM lets a job that ends within job_stop_timeout return its real
  result, kills the others and returns for each an error saying the minion was stopping;
- a minion killed with kill -9 takes its jobs' whole process groups with it, and starts again.

Jobs that must end while the master is down wait for a file the test creates: nothing here
depends on how long anything takes."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest

from rx.client.local import LocalClient
from tests.support.procs import children_of, is_running, wait_for
from tests.support.sandbox import load_minion, stored_returns

FAST_RETRY = {"timeout": 1, "return_retry_timer_max": 0.5}
"""One try to deliver takes 2 s without a master (two 1-s waits), rounds 0.5 s apart at most (set in
the sandbox's minion defaults: start_minion's own `timeout` is how long it waits for the start)."""
OLD_ATTEMPTS = 6
"""Before the spool, a return was given up after this many attempts (link.SEND_ATTEMPTS)."""



def _spool(box, minion_id: str) -> Path:
    return Path(load_minion(box.minion_dir(minion_id)).cachedir) / "return_spool"


def _spooled(box, minion_id: str) -> list[str]:
    """The jids in the minion's return spool, oldest first."""
    return [p.name.split("-")[1].split(".")[0] for p in sorted(_spool(box, minion_id).glob("*.ret"))]


def _failed_rounds(box, minion_id: str) -> int:
    rounds = re.findall(r"return spool: round (\d+) failed", box.minions[minion_id].output())
    return max(map(int, rounds), default=0)


def _gated(gate: Path, text: str) -> str:
    """A shell command that waits for `gate` to exist, then prints `text`."""
    return f"while [ ! -e {gate} ]; do sleep 0.05; done; echo {text}"


def _job_started(box, minion_id: str, count: int = 1) -> list[int]:
    """The minion's job processes: its children that lead their own process group (a job does; a helper the
    minion runs itself, such as a grains command, stays in the minion's group, which may be the test's own)."""
    pid = box.minions[minion_id].pid
    return wait_for(lambda: len(kids := [k for k in children_of(pid) if _leads_group(k)]) >= count and kids,
                    what=f"{count} job process(es) on {minion_id}")


def _leads_group(pid: int) -> bool:
    try:
        return os.getpgid(pid) == pid
    except ProcessLookupError:
        return False


def _stop_master(box, how: str) -> None:
    if how == "sigterm":
        assert box.stop_master() == 0
        return
    pids = box.master_pids()
    for pid in pids:  # the supervisor and every child at once: a crash of the whole master
        os.kill(pid, signal.SIGKILL)
    box.stop_master()
    wait_for(lambda: not any(is_running(p) for p in pids), what="the killed master's processes to be gone")


def _return_made_while_the_master_is_down(box, tmp_path, text: str, how: str = "sigterm", **minion: object) -> str:
    """Start a master and minion m1 (`minion`: its settings), start a job on m1 that ends once the master
    is stopped (`how`), and return the job's jid."""
    box.start_master()
    box.minion_defaults.update(minion)
    box.start_minion("m1")
    gate = tmp_path / "go"
    with LocalClient(cfg=box.cfg) as c:
        jid = c.cmd_async("m1", "cmd.run", [_gated(gate, text)])
    _job_started(box, "m1")
    _stop_master(box, how)
    gate.touch()
    return jid


@pytest.mark.parametrize("how", ["sigterm", "kill9"])
def test_return_made_while_the_master_is_down_is_stored_when_it_is_back(sandbox, tmp_path, how):
    jid = _return_made_while_the_master_is_down(sandbox, tmp_path, "made-while-down", how, **FAST_RETRY)
    wait_for(lambda: _spooled(sandbox, "m1") == [jid], timeout=30, what="the return in m1's spool")
    wait_for(lambda: _failed_rounds(sandbox, "m1") >= OLD_ATTEMPTS, timeout=90,
             what=f"m1 to try more than {OLD_ATTEMPTS} times")
    assert sandbox.minions["m1"].alive()
    assert stored_returns(sandbox.cfg, jid) == {}

    sandbox.start_master()
    stored = wait_for(lambda: stored_returns(sandbox.cfg, jid), timeout=30, what="the return in the master's job store")
    assert stored["m1"]["return"] == "made-while-down" and stored["m1"]["retcode"] == 0
    wait_for(lambda: _spooled(sandbox, "m1") == [], what="m1's spool to be emptied")
    with LocalClient(cfg=sandbox.cfg) as c:
        assert c.cmd("m1", "test.ping") == {"m1": True}


def test_spooled_return_survives_a_minion_restart(sandbox, tmp_path):
    jid = _return_made_while_the_master_is_down(sandbox, tmp_path, "kept-across-restart", **FAST_RETRY)
    wait_for(lambda: _spooled(sandbox, "m1") == [jid], timeout=30, what="the return in m1's spool")

    assert sandbox.minions["m1"].stop() == 0
    assert _spooled(sandbox, "m1") == [jid]
    sandbox.start_minion("m1", wait=False)
    sandbox.start_master()
    stored = wait_for(lambda: stored_returns(sandbox.cfg, jid), timeout=30, what="the return in the master's job store")
    assert stored["m1"]["return"] == "kept-across-restart"
    wait_for(lambda: _spooled(sandbox, "m1") == [], what="m1's spool to be emptied")


def test_return_on_its_way_when_the_minion_stops_is_spooled(sandbox, tmp_path):
    """The master is gone and the return's first try is still waiting for an answer when the minion
    gets SIGTERM: the return goes to the spool instead of being dropped."""
    jid = _return_made_while_the_master_is_down(sandbox, tmp_path, "on-its-way", timeout=30)
    wait_for(lambda: not children_of(sandbox.minions["m1"].pid), what="the job to end")
    assert sandbox.minions["m1"].stop() == 0
    assert _spooled(sandbox, "m1") == [jid]
    sandbox.start_master()
    sandbox.start_minion("m1")
    stored = wait_for(lambda: stored_returns(sandbox.cfg, jid), timeout=30, what="the return in the master's job store")
    assert stored["m1"]["return"] == "on-its-way"


def test_spool_bound_drops_the_oldest_return_with_a_warning(sandbox, tmp_path):
    sandbox.start_master()
    sandbox.minion_defaults.update(FAST_RETRY)
    sandbox.start_minion("m1", return_spool_max_returns=2)
    gates = [tmp_path / f"go{i}" for i in range(3)]
    with LocalClient(cfg=sandbox.cfg) as c:
        jids = [c.cmd_async("m1", "cmd.run", [_gated(g, f"ret{i}")]) for i, g in enumerate(gates)]
    _job_started(sandbox, "m1", count=3)
    assert sandbox.stop_master() == 0
    for n, gate in enumerate(gates):  # one at a time, so the spool's order is the jobs' order
        gate.touch()
        want = jids[max(0, n - 1):n + 1]
        wait_for(lambda: _spooled(sandbox, "m1") == want, timeout=30, what=f"m1's spool to hold {want}")
    log = sandbox.minions["m1"].output()
    assert re.search(rf"return spool full .* dropped the oldest spooled return, of job {jids[0]}", log), log[-3000:]

    sandbox.start_master()
    wait_for(lambda: stored_returns(sandbox.cfg, jids[2]) and stored_returns(sandbox.cfg, jids[1]), timeout=30,
             what="the two spooled returns in the job store")
    wait_for(lambda: _spooled(sandbox, "m1") == [], what="m1's spool to be emptied")


# ---------------------------------------------------------------- stopping and killing a minion

def test_sigterm_lets_short_jobs_finish_and_returns_an_error_for_the_others(sandbox, tmp_path):
    sandbox.start_master()
    sandbox.start_minion("m1", job_stop_timeout=8)
    gate = tmp_path / "go"
    with LocalClient(cfg=sandbox.cfg) as c:
        short = c.cmd_async("m1", "cmd.run", [_gated(gate, "finished-in-grace")])
        long = c.cmd_async("m1", "cmd.run", ["sleep 300"])
    kids = _job_started(sandbox, "m1", count=2)
    groups = {os.getpgid(p) for p in kids}

    minion = sandbox.minions["m1"]
    minion.send_signal(signal.SIGTERM)
    wait_for(lambda: "running jobs get job_stop_timeout" in minion.output(), what="m1 to wait for its jobs")
    gate.touch()
    assert minion.wait(40), "m1 did not exit after its grace period"
    assert minion.stop() == 0

    done = wait_for(lambda: stored_returns(sandbox.cfg, short), what="the short job's return")["m1"]
    assert (done["return"], done["retcode"], done["success"]) == ("finished-in-grace", 0, True)
    killed = wait_for(lambda: stored_returns(sandbox.cfg, long), what="the long job's return")["m1"]
    assert killed["retcode"] != 0 and killed["success"] is False
    assert "the minion was stopping" in killed["return"] and "job_stop_timeout" in killed["return"]
    assert _group_members(groups) == []
    r = sandbox.run_cli("rx-run", "jobs.lookup_jid", long)
    assert r.returncode == 0 and "the minion was stopping" in r.stdout, (r.stdout, r.stderr)


def _group_members(groups: set[int]) -> list[int]:
    """Live processes in any of these process groups."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] not in ("Z", "X") and int(fields[2]) in groups:
            out.append(int(name))
    return out


def test_kill_9_of_a_minion_kills_its_jobs_process_groups(sandbox):
    """...but not what a job that has ended left running on purpose."""
    sandbox.start_master()
    sandbox.start_minion("m1")
    with LocalClient(cfg=sandbox.cfg) as c:
        left = int(c.cmd("m1", "cmd.run", ["sleep 301 >/dev/null 2>&1 & echo $!"])["m1"])
        c.cmd_async("m1", "cmd.run", ["sleep 300"])
    job = _job_started(sandbox, "m1")[0]
    group = os.getpgid(job)
    assert group != os.getpgid(0), "the job's process group is the test's own: killing it would kill the test run"
    wait_for(lambda: len(_group_members({group})) >= 2, what="the job's shell to start sleep")
    try:
        sandbox.minions["m1"].stop(signal.SIGKILL)
        wait_for(lambda: _group_members({group}) == [], timeout=10, what=f"the job's process group {group} to be gone")
        assert is_running(left), "a process left behind by a job that had ended was killed"
    finally:
        for pid in _group_members({group}) + [left]:
            if is_running(pid):
                os.kill(pid, signal.SIGKILL)

    sandbox.start_minion("m1")
    with LocalClient(cfg=sandbox.cfg) as c:
        assert c.cmd("m1", "test.ping") == {"m1": True}
        assert c.cmd("m1", "cmd.run", ["echo again"]) == {"m1": "again"}


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 16 MB tmpfs (lazily unmounted at the end); skipped where this runner cannot mount one."""
    import subprocess
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(mnt)], capture_output=True,
                       text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_return_the_master_cannot_store_on_a_full_disk_is_retried_until_it_can(sandbox, tmp_path, small_tmpfs):
    """The master's job cache is on a small tmpfs, filled up while a job runs: storing its (2 MB) return
    fails and the master answers that it cannot take it; the minion spools the return and keeps trying
    (more than the old 6 attempts); once space is freed, the return is stored."""
    sandbox.start_master(cachedir=str(small_tmpfs))
    sandbox.minion_defaults.update(FAST_RETRY)
    sandbox.start_minion("m1")
    gate = tmp_path / "go"
    big = "head -c 2000000 /dev/zero | tr '\\0' x"
    with LocalClient(cfg=sandbox.cfg) as c:
        jid = c.cmd_async("m1", "cmd.run", [f"while [ ! -e {gate} ]; do sleep 0.05; done; {big}"])
    _job_started(sandbox, "m1")
    filler = small_tmpfs / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    gate.touch()

    wait_for(lambda: _spooled(sandbox, "m1") == [jid], timeout=30, what="the return in m1's spool")
    wait_for(lambda: _failed_rounds(sandbox, "m1") >= OLD_ATTEMPTS, timeout=60,
             what=f"m1 to try more than {OLD_ATTEMPTS} times")
    assert "could not take it" in sandbox.minions["m1"].output()
    assert stored_returns(sandbox.cfg, jid) == {}

    filler.unlink()
    stored = wait_for(lambda: stored_returns(sandbox.cfg, jid), timeout=30, what="the return in the master's job store")
    assert stored["m1"]["return"] == "x" * 2_000_000
    wait_for(lambda: _spooled(sandbox, "m1") == [], what="m1's spool to be emptied")
