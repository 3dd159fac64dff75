"""rx.minion.gate: what a minion does with a publication frame: verify the master's signature, open
it with the session key (or hold it for a re-auth), and admit only fresh, never-seen jobs that
target this minion.  Real keys, no sockets."""

from __future__ import annotations

import os
import time
from dataclasses import replace

import pytest

from rx.logsetup import RateLimitedLog
from rx.minion import gate as gate_module
from rx.minion.gate import JOB_WINDOW, START_SLACK, Gate, Hold
from rx.targeting import MinionFacts
from rx.transport.crypto import Identity
from rx.transport.handshake import Session, private_publish_key, publish_key, request_key
from rx.transport.messages import Job
from rx.transport.secure import seal_publication

SERIAL = 5
JID = "20240102030405060708"


def _session(master: Identity, secret: bytes, serial: int = SERIAL, offset: float = 0.0) -> Session:
    return Session(master_pub=master.public, serial=serial, publish_key=publish_key(secret, serial),
                   request_key=request_key(secret, serial, "web1"), master_offset=offset)


@pytest.fixture
def gate(master, secret) -> Gate:
    g = Gate(lambda: MinionFacts("web1", {"os": "Linux", "roles": ["web"]}))
    g.use(_session(master, secret))
    return g


def _job(jid: str = JID, tgt: str | list = "web*", tgt_type: str = "glob", age: float = 0.0) -> Job:
    return Job(jid=jid, fun="test.ping", arg=[], kwarg={}, tgt=tgt, tgt_type=tgt_type, ts=time.time() - age)


def _frame(master: Identity, secret: bytes, job: Job, serial: int = SERIAL) -> bytes:
    return seal_publication(master, publish_key(secret, serial), serial, job)


# ---------------------------------------------------------------- verify and open

@pytest.mark.parametrize("expires", [0.0, 30.0], ids=["no-expiry", "expiry"])
def test_a_signed_publication_opens_to_its_job(gate, master, secret, expires):
    job = _job()
    job = replace(job, expires=job.ts + expires if expires else 0.0)
    pub = gate.verify(_frame(master, secret, job))
    assert pub is not None and pub.serial == SERIAL
    assert gate.open(pub, retry=True) == job


@pytest.mark.parametrize("frame", [b"", b"\xc1", b"\x90"], ids=repr)
def test_garbage_frames_are_dropped(gate, frame):
    assert gate.verify(frame) is None


def test_a_publication_signed_by_another_key_is_dropped(gate, secret):
    assert gate.verify(_frame(Identity.generate(), secret, _job())) is None


@pytest.mark.parametrize("serial, secret_changed, retry, expect", [
    (SERIAL + 1, False, True, Hold.REAUTH),   # the master rotated: re-authenticate, then open it
    (SERIAL + 1, False, False, None),         # ... but only once
    (SERIAL - 1, False, True, None),          # an old key: never worth a re-auth
    (SERIAL, True, True, Hold.REAUTH),        # the master's session secret changed (restart without its file)
    (SERIAL, True, False, None),
])
def test_publications_this_session_cannot_open(gate, master, secret, serial, secret_changed, retry, expect):
    pub = gate.verify(_frame(master, os.urandom(32) if secret_changed else secret, _job(), serial=serial))
    assert pub is not None
    assert gate.open(pub, retry=retry) is expect


# ---------------------------------------------------------------- admit: freshness, replay, self-match

def test_a_fresh_job_for_this_minion_is_admitted_once(gate):
    job = _job()
    assert gate.admit(job) is True
    assert JID in gate.seen
    assert gate.admit(job) is False, "a replayed jid is refused"
    assert gate.admit(_job(age=-1.0)) is False, "even with another timestamp"


@pytest.mark.parametrize("age", [JOB_WINDOW + 10, -(JOB_WINDOW + 10)], ids=["old", "future"])
def test_jobs_outside_the_window_are_refused(gate, age):
    gate.session_started = 1.0  # long ago: only the window decides
    assert gate.admit(_job(age=age)) is False
    assert JID not in gate.seen


def test_jobs_published_before_this_process_started_are_refused(gate):
    assert gate.admit(_job(age=START_SLACK + 30)) is False  # inside the window, but older than our first session
    assert gate.admit(_job(jid="20240102030405060709", age=START_SLACK / 2)) is True


def test_freshness_is_judged_by_the_master_clock(master, secret):
    gate = Gate(lambda: MinionFacts("web1", {}))
    gate.use(_session(master, secret, offset=3600.0))  # the master's clock is an hour ahead of ours
    assert gate.admit(_job(age=-3600.0)) is True
    assert gate.admit(_job(jid="20240102030405060709")) is False  # an hour old by the master's clock


@pytest.mark.parametrize("offset, expires_in, admitted", [
    (0.0, -1.0, False),        # expired a second ago
    (0.0, 5.0, True),          # not yet
    (0.0, None, True),         # no expiry: only the window
    (3600.0, -1.0, False),     # the master's clock is an hour ahead: expired by it, an hour to go by ours
    (-3600.0, 5.0, True),      # an hour behind: not yet by it, expired an hour ago by ours
    (-3600.0, None, True),
], ids=["expired", "not-yet", "no-expiry", "master-ahead-expired", "master-behind-not-yet", "offset-no-expiry"])
def test_expiry_is_judged_by_the_master_clock(master, secret, caplog, monkeypatch, offset, expires_in, admitted):
    monkeypatch.setattr(gate_module, "_drop", RateLimitedLog(gate_module.log))  # each case logs its own refusal
    gate = Gate(lambda: MinionFacts("web1", {}))
    gate.use(_session(master, secret, offset=offset))
    master_now = time.time() + offset
    job = replace(_job(), ts=master_now - 2.0, expires=0.0 if expires_in is None else master_now + expires_in)
    assert gate.admit(job) is admitted
    assert (JID in gate.seen) is admitted
    assert (f"refused expired job {JID}" in caplog.text) is not admitted


def test_a_new_session_keeps_the_start_time(gate, master, secret):
    started = gate.session_started
    gate.use(_session(master, secret, serial=SERIAL + 1))
    assert gate.session_started == started and gate.session.serial == SERIAL + 1


@pytest.mark.parametrize("tgt, tgt_type, ours", [
    ("web*", "glob", True), ("db*", "glob", False), (["db1", "web1"], "list", True), (["db1"], "list", False),
    ("os:Linux", "grain", True), ("os:BSD", "grain", False), ("G@roles:web and web1", "compound", True),
    ("web1 and not G@os:Linux", "compound", False), ("and or", "compound", False), ("[", "pcre", False),
])
def test_only_jobs_targeting_this_minion_are_admitted(gate, tgt, tgt_type, ours):
    assert gate.admit(_job(tgt=tgt, tgt_type=tgt_type)) is ours


# ---------------------------------------------------------------- private publications

def _private_frame(master: Identity, secret: bytes, job: Job, to: str, serial: int = SERIAL) -> bytes:
    key = private_publish_key(request_key(secret, serial, to))
    return seal_publication(master, key, serial, job, to=to)


def test_a_private_publication_to_this_minion_opens(gate, master, secret):
    job = _job()
    pub = gate.verify(_private_frame(master, secret, job, "web1"))
    assert pub is not None and pub.to == "web1"
    assert gate.open(pub, retry=True) == job


def test_a_private_publication_to_another_minion_is_dropped_unread(gate, master, secret, caplog):
    assert gate.verify(_private_frame(master, secret, _job(), "web2")) is None
    assert "does not verify" not in caplog.text  # not an attack: a neighbour in our topic bucket


def test_a_private_publication_under_a_newer_session_waits_for_a_reauth(gate, master, secret):
    pub = gate.verify(_private_frame(master, secret, _job(), "web1", serial=SERIAL + 1))
    assert pub is not None and gate.open(pub, retry=True) is Hold.REAUTH
