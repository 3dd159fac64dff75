"""Issue #8 item 5: a minion cannot keep a client waiting.  The client counts `jobs.find` probe
answers only from the minions it probed, and its whole wait is bounded by max(timeout, max_wait);
a minion that keeps saying "still running" is reported as such (exit 3)."""

from __future__ import annotations

import asyncio
import json
import threading

from conftest import EventWatch, ListeningFakeMinion
from rx.client import events as rx_events
from rx.client.local import AsyncLocalClient, LocalClient
from rx.master.services.events import EventService
from rx.transport.events import JobNewEvent, JobRetEvent
from rx.transport.messages import Job, JobReturn
from tests.support.procs import DEADLINE

FAST = ("-t", "1", "--gather-job-timeout", "1")


def probe_liar(box, minion_id: str = "liar", *, answer_jobs: bool = False) -> ListeningFakeMinion:
    """A fake minion that answers every `jobs.find` probe it sees with "still running", whoever was probed;
    with `answer_jobs` it also returns True for the other jobs."""
    def answer(job: Job) -> object:
        if job.fun == "jobs.find":
            return {"jid": job.arg[0] if job.arg else "", "fun": "test.sleep", "pid": 4242}
        return True if answer_jobs and job.arg != ["warm-up"] else None
    return ListeningFakeMinion(box, minion_id, answer)


async def _find_job(cfg, jid: str, minions: list[str]) -> dict:
    async with AsyncLocalClient(cfg=cfg) as c:
        return await c.find_job(jid, minions, timeout=1)


def _probes(events: list[tuple[str, dict]], jid: str) -> list[JobNewEvent]:
    """The `jobs.find` probes published for `jid`."""
    news = [JobNewEvent.from_wire(d) for t, d in events if t.endswith("/new")]
    return [n for n in news if n.job.fun == "jobs.find" and n.job.arg == [jid]]


def test_a_minion_that_always_says_running_cannot_hold_the_client_past_max_wait(fleet):
    """The liar is targeted and never returns; it answers every probe "still running".  `rx` ends at
    --max-wait, reports it as still running and the silent minion as not connected, and exits 3."""
    fleet.preaccept("silent")
    liar = probe_liar(fleet)
    try:
        r = fleet.run_cli("rx", "*", "test.ping", *FAST, "--max-wait", "6", "--out", "json", timeout=60)
        assert r.returncode == 3, r.stderr
        assert json.loads(r.stdout) == {"m1": True, "m2": True, "silent": "Minion did not return. [not connected]",
                                        "liar": "Minion did not return. [still running]"}
        assert "still ran the job when --max-wait was reached" in r.stderr and "rx-run jobs.lookup_jid" in r.stderr
        assert any(rep.get("ok") for rep in liar.replies.values()), "the liar's probe answers were accepted"
    finally:
        liar.close()
    with LocalClient(cfg=fleet.cfg) as c:
        assert c.cmd("m*", "test.ping") == {"m1": True, "m2": True}


def test_probe_answers_for_minions_that_were_not_probed_do_not_extend_the_wait(fleet):
    """The liar returns the job, and would answer the probe meant for the silent minion: that probe is sealed
    for the silent minion alone (a private publication, item 8), so the liar cannot even read it; the client
    probes once and reports the silent minion.  (A broadcast job's answer from a minion it did not target
    is refused by the master: tests/integration/test_untargeted_return.py.)"""
    fleet.preaccept("silent")
    liar = probe_liar(fleet, answer_jobs=True)
    watch = EventWatch(fleet.cfg, "rx/job/")
    try:
        r = fleet.run_cli("rx", "*", "test.ping", *FAST, "--max-wait", "30", "--out", "json", timeout=60)
        assert r.returncode == 3, r.stderr
        out = json.loads(r.stdout)
        assert out == {"m1": True, "m2": True, "liar": True, "silent": "Minion did not return. [not connected]"}
        events = watch.drain(0.5)
        main = [JobNewEvent.from_wire(d).job.jid for t, d in events if t.endswith("/new")
                and JobNewEvent.from_wire(d).job.fun == "test.ping"]
        probes = _probes(events, main[0])
        assert [p.minions for p in probes] == [["silent"]], "one probe, of the silent minion only"
        assert probes[0].job.jid not in liar.replies, "the liar read a probe sealed for another minion"
    finally:
        watch.close()
        liar.close()


def test_client_ignores_probe_answers_from_minions_it_did_not_probe(fleet):
    """Even if a probe answer from an unprobed minion reached the bus (a master that stored it), the client
    does not count it: the test fires one on the master's bus for every probe, as that master would."""
    fleet.preaccept("silent")
    stop, ready = threading.Event(), threading.Event()

    def inject() -> None:
        events = EventService(fleet.cfg.event_pull_ipc, fleet.cfg.event_pub_ipc)
        with rx_events.EventWatch(fleet.cfg, "rx/job/") as w:
            ready.set()
            while not stop.is_set():
                event = w.next(0.1, lambda tag: tag.endswith("/new"))
                if event is None or JobNewEvent.from_wire(event[1]).job.fun != "jobs.find":
                    continue
                probe = JobNewEvent.from_wire(event[1]).job
                ret = JobReturn(probe.jid, "jobs.find", probe.arg, 0, True, {"jid": probe.arg[0], "pid": 1})
                asyncio.run(events.fire([JobRetEvent("m1", ret)]))
        events.close()

    injector = threading.Thread(target=inject, daemon=True)
    injector.start()
    assert ready.wait(DEADLINE)
    watch = EventWatch(fleet.cfg, "rx/job/")
    try:
        with LocalClient(cfg=fleet.cfg, rx_reasons=True) as c:
            out = {}
            for item in c.cmd_iter("*", "test.ping", timeout=1, gather_job_timeout=1, max_wait=30,
                                   expect_minions=True):
                out.update(item)
            assert {m: r.get("ret", r.get("reason")) for m, r in out.items()} == {
                "m1": True, "m2": True, "silent": "not connected"}
            jid = out["m1"]["jid"]
            probes = _probes(watch.drain(0.5), jid)
            assert [p.minions for p in probes] == [["silent"]], "one probe: the injected answer was not counted"
            assert asyncio.run(_find_job(fleet.cfg, jid, ["silent"])) == {}, "find_job counts only those it asked"
            assert [p.minions for p in _probes(watch.drain(0.5), jid)] == [["silent"]]
    finally:
        stop.set()
        injector.join(10)
        watch.close()
