"""Issue #9 item 10: a client's deadline is the job's deadline.  A job carries an expiry (the master's
clock): by default what the client waits before it reports a minion missing, or `--job-expire`.
A minion frozen (SIGSTOP) while `rx` waited for it, and reported `[no response]` (it still holds its
publish connection, so the master says it is connected: not `[not connected]`), refuses the job
when it resumes (SIGCONT) after the expiry, and sends no return for it; the master's catch-up
(`_missed`) does not hand an expired job out; a new job runs as usual."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time

from conftest import FakeMinion
from rx.client.local import LocalClient
from rx.master.services import open_services
from rx.master.store import JobRecord
from rx.transport.replies import MissedReply
from tests.support.procs import proc_state, wait_for
from tests.support.sandbox import stored_returns

RX_TIMEOUT, GATHER_JOB_TIMEOUT = 1.0, 1.0
CLOCK_SLACK = 0.5
"""A minion's estimate of the master's clock lags it by the latency of the auth reply it was taken from
(milliseconds on loopback): the test waits this much past an expiry before letting the minion judge it."""


def _record(box, jid: str) -> JobRecord:
    services = open_services(box.cfg)
    try:
        return asyncio.run(services.jobs.job(jid))
    finally:
        services.close()



def _past(expires: float) -> None:
    """Until the master's clock (this host's) is past `expires`."""
    assert expires > 0, "the job carries no expiry"
    wait_for(lambda: time.time() > expires + CLOCK_SLACK, timeout=expires + CLOCK_SLACK - time.time() + 5,
             what="the job's expiry to pass")


def test_a_job_a_frozen_minion_missed_never_runs_when_it_resumes(sandbox, tmp_path):
    sandbox.start_master()
    sandbox.start_minion("m1")
    ran = tmp_path / "ran"
    pid = sandbox.minions["m1"].pid
    os.kill(pid, signal.SIGSTOP)
    try:
        wait_for(lambda: proc_state(pid) == "T", what="m1 to be stopped")
        r = sandbox.run_cli("rx", "-v", "-t", str(RX_TIMEOUT), "--gather-job-timeout", str(GATHER_JOB_TIMEOUT),
                            "m1", "cmd.run", f"echo late >> {ran}")
        assert r.returncode == 3, r.stderr
        assert "Minion did not return. [no response]" in r.stdout, "frozen but connected: the master says so"
        jid = re.search(r"Executing job with jid (\d{20})", r.stderr).group(1)
        job = _record(sandbox, jid).job
        assert job.expires == job.ts + (RX_TIMEOUT + GATHER_JOB_TIMEOUT), "by default, the client's whole wait"
        _past(job.expires)
    finally:
        os.kill(pid, signal.SIGCONT)

    with LocalClient(cfg=sandbox.cfg) as c:  # published after the late job: m1 reads it after the late one
        assert c.cmd("m1", "cmd.run", [f"echo fresh >> {ran}"], timeout=30) == {"m1": ""}
    assert ran.read_text() == "fresh\n", "the job the client gave up on ran when m1 resumed"
    log = sandbox.minions["m1"].output()
    assert f"refused expired job {jid}" in log
    assert f"job {jid}:" not in log
    assert "m1" not in stored_returns(sandbox.cfg, jid), "m1 returned for the job it refused"
    assert sandbox.minions["m1"].alive()


def test_job_expire_sets_the_expiry_and_the_catch_up_keeps_expired_jobs(sandbox):
    """A minion that reconnects asks for the jobs it missed (`_missed`): those past their expiry are not in
    the answer, the others are.  `rx --job-expire` and LocalClient `job_expire=` set the expiry (0: none but
    the freshness window); a job published without waiting has none unless asked."""
    sandbox.start_master()
    fake = FakeMinion(sandbox, "f1")
    try:
        assert fake.auth() == "accepted"
        since = time.time()
        r = sandbox.run_cli("rx", "--async", "--job-expire", "0.5", "f1", "test.ping")
        assert r.returncode == 0, r.stderr
        short = r.stdout.strip()
        with LocalClient(cfg=sandbox.cfg) as c:
            window = c.cmd_async("f1", "test.ping", job_expire=0)
            unset = c.cmd_async("f1", "test.ping")
            explicit = c.cmd_async("f1", "test.ping", job_expire=120)
        short_job = _record(sandbox, short).job
        assert short_job.expires == short_job.ts + 0.5
        assert _record(sandbox, window).job.expires == _record(sandbox, unset).job.expires == 0
        explicit_job = _record(sandbox, explicit).job
        assert explicit_job.expires == explicit_job.ts + 120
        _past(short_job.expires)
        reply = fake.send_sealed(fake.sealed("_missed", {"since": since}))
        assert [j.jid for j in MissedReply.from_wire(reply).jobs] == [window, unset, explicit]
    finally:
        fake.close()
