"""rx's bus events under Salt's tags (rx.api.events.salttags), table-driven against the shapes Salt 3007
fires (salt/master.py's new-job load, the minion's `_return` load, salt/channel/server.py's auth events,
salt/key.py's key events, the `_minion_event` load that salt/daemons/masterapi.py fires as a whole)."""

from __future__ import annotations

import datetime

import pytest

from rx.api.events.salttags import stamp, to_salt
from rx.transport.events import AuthEvent, JobNewEvent, JobRetEvent, KeyEvent, MinionFired
from rx.transport.messages import Job, JobReturn

TS = 1767225600.25  # 2026-01-01 00:00:00.25 UTC
STAMP = "2026-01-01T00:00:00.250000"
JID = "20260101000000250000"

# the keys of each event as Salt fires it (Salt's docs, "Salt Master Events", and its 3007 sources)
SALT_NEW = {"jid", "tgt_type", "tgt", "user", "fun", "arg", "minions", "missing", "_stamp"}
SALT_RET = {"cmd", "id", "jid", "fun", "fun_args", "return", "retcode", "success", "_stamp"}
SALT_KEY = {"result", "act", "id", "_stamp"}
SALT_MINION_EVENT = {"id", "cmd", "pretag", "tag", "data", "_stamp"}


def _event(ev):
    return ev.tag, ev.to_wire()


JOB = Job(jid=JID, fun="test.arg", arg=[1, "two"], kwarg={"k": "v"}, tgt="web*", tgt_type="glob", ts=TS, user="root")

CASES = [
    (_event(JobNewEvent(JOB, ["m1", "m2"])), f"salt/job/{JID}/new",
     {"jid": JID, "tgt_type": "glob", "tgt": "web*", "user": "root", "fun": "test.arg",
      "arg": [1, "two", {"__kwarg__": True, "k": "v"}], "minions": ["m1", "m2"], "missing": [], "_stamp": STAMP}),
    (_event(JobNewEvent(Job(jid=JID, fun="test.ping", arg=[], kwarg={}, tgt=["m1"], tgt_type="list", ts=TS,
                            user="file:bob"), ["m1"])), f"salt/job/{JID}/new",
     {"jid": JID, "tgt_type": "list", "tgt": ["m1"], "user": "file:bob", "fun": "test.ping", "arg": [],
      "minions": ["m1"], "missing": [], "_stamp": STAMP}),
    (_event(JobRetEvent("m1", JobReturn(jid=JID, fun="test.ping", fun_args=[], retcode=0, success=True, ret=True,
                                        start_time=TS - 1, end_time=TS))), f"salt/job/{JID}/ret/m1",
     {"cmd": "_return", "id": "m1", "jid": JID, "fun": "test.ping", "fun_args": [], "return": True, "retcode": 0,
      "success": True, "_stamp": STAMP}),
    (_event(JobRetEvent("m2", JobReturn(jid=JID, fun="cmd.run", fun_args=["false"], retcode=1, success=False,
                                        ret=""))), f"salt/job/{JID}/ret/m2",
     {"cmd": "_return", "id": "m2", "jid": JID, "fun": "cmd.run", "fun_args": ["false"], "return": "", "retcode": 1,
      "success": False, "_stamp": STAMP}),
    (_event(AuthEvent("m1", "accepted", "ab:cd")), "salt/auth",
     {"result": True, "act": "accept", "id": "m1", "fingerprint": "ab:cd", "_stamp": STAMP}),
    (_event(AuthEvent("m3", "pending", "ef")), "salt/auth",
     {"result": True, "act": "pend", "id": "m3", "fingerprint": "ef", "_stamp": STAMP}),
    (_event(AuthEvent("m4", "rejected", "01")), "salt/auth",
     {"result": False, "act": "reject", "id": "m4", "fingerprint": "01", "_stamp": STAMP}),
    (_event(AuthEvent("m5", "denied", "02")), "salt/auth",
     {"result": False, "act": "denied", "id": "m5", "fingerprint": "02", "_stamp": STAMP}),
    (_event(KeyEvent("m1", "accept", "ab")), "salt/key", {"result": True, "act": "accept", "id": "m1", "_stamp": STAMP}),
    (_event(KeyEvent("m1", "reject", "ab")), "salt/key", {"result": True, "act": "reject", "id": "m1", "_stamp": STAMP}),
    (_event(KeyEvent("m1", "delete", "ab")), "salt/key", {"result": True, "act": "delete", "id": "m1", "_stamp": STAMP}),
    (_event(KeyEvent("m9", "evict", "ab")), "salt/key", {"result": True, "act": "delete", "id": "m9", "_stamp": STAMP}),
    (_event(KeyEvent("m9", "pending", "ab")), "salt/key", {"result": True, "act": "pend", "id": "m9", "_stamp": STAMP}),
    (_event(MinionFired("m1", "start", {"grains": {"os": "Debian"}, "version": "1.0"})), "salt/minion/m1/start",
     {"id": "m1", "cmd": "_minion_event", "pretag": None, "tag": "salt/minion/m1/start",
      "data": "Minion m1 started at Thu Jan  1 00:00:00 2026", "grains": {"os": "Debian"}, "_stamp": STAMP}),
    (_event(MinionFired("m1", "myapp/done", {"n": 1})), "salt/minion/m1/myapp/done",
     {"id": "m1", "cmd": "_minion_event", "pretag": None, "tag": "salt/minion/m1/myapp/done", "data": {"n": 1},
      "_stamp": STAMP}),
    (("rx/netapi/hook/ci/build", {"post": {"ok": 1}, "headers": {}}), "salt/netapi/hook/ci/build",
     {"post": {"ok": 1}, "headers": {}, "_stamp": STAMP}),
    (("myapp/deploy", {"v": 2}), "myapp/deploy", {"v": 2, "_stamp": STAMP}),
    (("rx/job_cache/lost", {"what": "lost", "message": "m"}), "rx/job_cache/lost",
     {"what": "lost", "message": "m", "_stamp": STAMP}),
    (("rx/key/rotate", {"serial": 3, "reason": "r"}), "rx/key/rotate", {"serial": 3, "reason": "r", "_stamp": STAMP}),
]


@pytest.mark.parametrize("event,tag,data", CASES, ids=[c[1] + ":" + str(n) for n, c in enumerate(CASES)])
def test_to_salt(event, tag, data):
    assert to_salt(*event, TS) == (tag, data)


@pytest.mark.parametrize("salt_keys,event", [
    (SALT_NEW, _event(JobNewEvent(JOB, ["m1"]))),
    (SALT_RET, _event(JobRetEvent("m1", JobReturn(jid=JID, fun="test.ping", fun_args=[], retcode=0, success=True,
                                                  ret=True, start_time=TS, end_time=TS)))),
    (SALT_KEY, _event(KeyEvent("m1", "accept", "ab"))),
    (SALT_MINION_EVENT, _event(MinionFired("m1", "custom", {}))),
])
def test_exactly_salts_fields(salt_keys, event):
    assert set(to_salt(*event, TS)[1]) == salt_keys


def test_salt_auth_has_salts_fields_but_pub():
    """rx's bus carries the key's fingerprint, not the key: `pub` is the one field Salt has and rx does not."""
    assert set(to_salt(*_event(AuthEvent("m1", "accepted", "ab")), TS)[1]) == {"result", "act", "id", "_stamp",
                                                                              "fingerprint"}


def test_stamp_is_salts_utcnow_isoformat():
    now = datetime.datetime(2026, 5, 4, 3, 2, 1, 123456)
    assert stamp(now.replace(tzinfo=datetime.timezone.utc).timestamp()) == now.isoformat() == "2026-05-04T03:02:01.123456"
    assert stamp(TS - 0.25) == "2026-01-01T00:00:00.000000"


def test_translation_is_idempotent_on_salt_tags():
    tag, data = to_salt(*_event(KeyEvent("m1", "accept", "ab")), TS)
    assert to_salt(tag, data, TS + 5) == (tag, data)


def test_the_input_is_not_changed():
    tag, data = _event(JobNewEvent(JOB, ["m1"]))
    before = repr(data)
    to_salt(tag, data, TS)
    to_salt("other", data, TS)
    assert repr(data) == before
