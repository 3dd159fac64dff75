"""PKI: key states, rx-key, and what a pending, rejected, deleted or
impersonating minion can (not) do."""

from __future__ import annotations

import json

import pytest

from conftest import EventWatch, FakeMinion
from rx.client.local import LocalClient
from tests.support.sandbox import key_fingerprint, session_keys
from rx.transport.messages import JobReturn
from tests.support.procs import wait_for


def _keys(box) -> dict:
    r = box.run_cli("rx-key", "-L", "--out", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_pending_minion_warns_with_the_accept_command_then_works_once_accepted(sandbox):
    sandbox.start_master()
    d = sandbox.start_minion("newbie", accept=False, wait=False)
    wait_for(lambda: "newbie" in _keys(sandbox)["pending"], what="pending key")
    wait_for(lambda: "rx-key -a newbie" in d.output(), what="pending warning")
    assert "fingerprint" in d.output()
    r = sandbox.run_cli("rx", "*", "test.ping")
    assert r.returncode == 4, "a pending minion must not be targeted"
    watch = EventWatch(sandbox.cfg, "rx/minion/newbie/start")
    try:
        r = sandbox.run_cli("rx-key", "-a", "new*", "-y")
        assert r.returncode == 0 and "newbie" in r.stdout
        watch.next()
    finally:
        watch.close()
    with LocalClient(cfg=sandbox.cfg) as c:
        assert c.cmd("*", "test.ping") == {"newbie": True}


def test_rx_key_listing_fingerprints_and_confirmation(fleet):
    keys = _keys(fleet)
    assert keys["accepted"] == ["m1", "m2"] and keys["pending"] == []
    r = fleet.run_cli("rx-key", "-f", "m1")
    assert r.returncode == 0
    fp = key_fingerprint(fleet.cfg, "m1")
    assert fp in r.stdout
    r = fleet.run_cli("rx-key", "-F", "--out", "json")
    assert {k["id"] for k in json.loads(r.stdout)["accepted"]} == {"m1", "m2"}
    r = fleet.run_cli("rx-key", "-d", "m1", input="")
    assert r.returncode == 2 and "-y" in r.stderr
    assert _keys(fleet)["accepted"] == ["m1", "m2"], "nothing may change without confirmation"
    r = fleet.run_cli("rx-key", "-a", "nobody", "-y")
    assert r.returncode == 1 and "does not match any unaccepted keys" in r.stderr


def test_deleted_minion_cannot_read_jobs_or_return(sandbox, tmp_path):
    # jobs go out under the shared publish key here: the deleted m2 receives one it cannot open, which makes
    # it re-authenticate (a private job to m1 alone would never reach it)
    sandbox.start_master(private_publish_max=0)
    sandbox.start_minion("m1")
    sandbox.start_minion("m2")
    fleet = sandbox
    serial_before = session_keys(fleet.cfg)
    r = fleet.run_cli("rx-key", "-d", "m2", "-y")
    assert r.returncode == 0, r.stderr
    after = session_keys(fleet.cfg)
    assert after.serial > serial_before.serial, "deleting an accepted key must rotate the session key"
    marker = tmp_path / "m2-ran"
    with LocalClient(cfg=fleet.cfg) as c:
        out = c.cmd("*", "cmd.run", [f"echo $(hostname) >> {marker}; echo done"], full_return=True)
        assert set(out) == {"m1"}
        # m1 ran it once; m2 (deleted) never did
        assert marker.read_text().count("\n") == 1
    # m2 went back to pending on its own when it tried to re-authenticate
    wait_for(lambda: "m2" in _keys(fleet)["pending"], what="m2 pending after delete")


def test_rejected_minion_cannot_run_or_return(fleet):
    r = fleet.run_cli("rx-key", "-r", "m2", "--include-accepted", "-y")
    assert r.returncode == 0
    assert _keys(fleet)["rejected"] == ["m2"]
    with LocalClient(cfg=fleet.cfg) as c:
        assert c.cmd("*", "test.ping") == {"m1": True}
        assert c.cmd("m2", "test.ping") == {}


def test_return_claiming_another_minions_id_is_refused(fleet):
    evil = FakeMinion(fleet, "evil")
    try:
        assert evil.auth() == "accepted"
        with LocalClient(cfg=fleet.cfg) as c:
            jid = c.cmd_async(["m1", "evil"], "test.sleep", [3], tgt_type="list")
        watch = EventWatch(fleet.cfg, f"rx/job/{jid}/ret/")
        try:
            ret = JobReturn(jid=jid, fun="test.sleep", fun_args=[3], retcode=0, success=True, ret="forged").to_wire()
            # 1. envelope says m1, sealed with evil's key: does not authenticate
            reply = evil.send_sealed(evil.sealed("_return", ret, claim_id="m1"))
            assert reply["ok"] is False and reply["error"]["type"] == "auth"
            # 2. payload claims m1, envelope is evil: filed under evil (the key's owner), never under m1
            reply = evil.send_sealed(evil.sealed("_return", {**ret, "id": "m1"}))
            assert reply["ok"] is True
            tag, data = watch.next()
            assert tag == f"rx/job/{jid}/ret/evil" and data["id"] == "evil"
            tag, data = watch.next()
            assert tag == f"rx/job/{jid}/ret/m1" and data["return"] is True
        finally:
            watch.close()
    finally:
        evil.close()


def _assert_delivered_once(fleet, fake, frame: bytes, tag_prefix: str) -> None:
    """The frame is accepted and fires its event once; the same bytes again are refused, with no event."""
    watch = EventWatch(fleet.cfg, tag_prefix)
    try:
        assert fake.send_sealed(frame)["ok"] is True
        watch.next()
        again = fake.send_sealed(frame)
        assert again["ok"] is False and again["error"]["type"] == "duplicate"
        assert watch.drain(0.3) == []
    finally:
        watch.close()


def test_replayed_return_is_refused(fleet):
    fake = FakeMinion(fleet, "fake")
    try:
        fake.auth()
        with LocalClient(cfg=fleet.cfg) as c:
            jid = c.cmd_async(["m1", "fake"], "test.ping", tgt_type="list")
        frame = fake.sealed("_return", JobReturn(jid=jid, fun="test.ping", fun_args=[], retcode=0, success=True,
                                                 ret=True).to_wire())
        _assert_delivered_once(fleet, fake, frame, f"rx/job/{jid}/ret/fake")
        unknown = fake.send_sealed(fake.sealed("_return", JobReturn(jid="20000101000000000000", fun="test.ping",
                                                                    fun_args=[], retcode=0, success=True,
                                                                    ret=True).to_wire()))
        assert unknown["ok"] is False and unknown["error"]["type"] == "unknown_job"
    finally:
        fake.close()


def test_pending_fake_minion_gets_no_keys_and_cannot_send(fleet):
    fake = FakeMinion(fleet, "sneaky", accept=False)
    try:
        assert fake.auth() == "pending"
        assert fake.session is None
    finally:
        fake.close()


def test_different_key_for_accepted_id_is_denied(fleet):
    imposter = FakeMinion(fleet, "m1", accept=False)
    try:
        assert imposter.auth() == "denied"
    finally:
        imposter.close()
    assert _keys(fleet)["denied"] == ["m1"]
    with LocalClient(cfg=fleet.cfg) as c:
        assert c.cmd("m1", "test.ping") == {"m1": True}


def test_minion_events_are_filed_under_the_authenticated_id(fleet):
    fake = FakeMinion(fleet, "evt")
    try:
        fake.auth()
        watch = EventWatch(fleet.cfg, "rx/")
        try:
            assert fake.send_sealed(fake.sealed("_minion_event", {"tag": "custom/thing", "data": {"a": 1}}))["ok"]
            tag, data = watch.next(match=lambda t: "custom" in t)
            assert tag == "rx/minion/evt/custom/thing" and data["id"] == "evt"
            bad = fake.send_sealed(fake.sealed("_minion_event", {"tag": "../../job/1/ret/m1", "data": {}}))
            assert bad["ok"] is False
        finally:
            watch.close()
    finally:
        fake.close()


def test_master_finger_pins_the_right_master_and_refuses_another(sandbox):
    sandbox.start_master()
    r = sandbox.run_cli("rx-key", "-F", "--out", "json")
    finger = json.loads(r.stdout)["local"][0]["fingerprint"]
    sandbox.start_minion("good", master_finger=finger)
    wrong = "00:" * 31 + "00"
    d = sandbox.start_minion("bad", master_finger=wrong, wait=False)
    wait_for(lambda: "does not match master_finger" in d.output(), what="master_finger refusal")
    with LocalClient(cfg=sandbox.cfg) as c:
        assert c.cmd("*", "test.ping", timeout=1) == {"good": True, "bad": False}  # accepted, never connected
    assert not (sandbox.minion_dir("bad") / "root" / "etc" / "rx" / "pki" / "minion" / "master.pub").exists()


def test_rx_key_bulk_operations(sandbox):
    """-A, -R, -D and --include-rejected on keys filed by real _auth requests; events on the bus."""
    sandbox.start_master()
    fakes = [FakeMinion(sandbox, f"k{i}", accept=False) for i in range(3)]
    watch = EventWatch(sandbox.cfg, "rx/key")
    try:
        for f in fakes:
            assert f.auth() == "pending"
        assert sorted(_keys(sandbox)["pending"]) == ["k0", "k1", "k2"]
        assert watch.next()[1]["act"] == "pending"
        assert sandbox.run_cli("rx-key", "-r", "k0", "-y").returncode == 0
        assert sandbox.run_cli("rx-key", "-A", "-y").returncode == 0
        keys = _keys(sandbox)
        assert keys["accepted"] == ["k1", "k2"] and keys["rejected"] == ["k0"]
        assert fakes[1].auth() == "accepted" and fakes[0].auth() == "rejected"
        assert sandbox.run_cli("rx-key", "-A", "-y", "--include-rejected").returncode == 0
        assert fakes[0].auth() == "accepted"
        assert sandbox.run_cli("rx-key", "-D", "-y").returncode == 0
        assert _keys(sandbox) == {"accepted": [], "pending": [], "rejected": [], "denied": []}
        assert fakes[2].auth() == "pending"
        assert sandbox.run_cli("rx-key", "-R", "-y").returncode == 0
        assert _keys(sandbox)["rejected"] == ["k2"]
        acts = [d["act"] for _t, d in watch.drain(1.0)]
        assert {"reject", "accept", "delete"} <= set(acts)
    finally:
        watch.close()
        for f in fakes:
            f.close()


def test_replayed_minion_event_is_refused(fleet):
    fake = FakeMinion(fleet, "evt2")
    try:
        fake.auth()
        frame = fake.sealed("_minion_event", {"tag": "custom/once", "data": {}})
        _assert_delivered_once(fleet, fake, frame, "rx/minion/evt2/custom")
    finally:
        fake.close()


def test_flood_of_made_up_ids_evicts_the_oldest_pending_keys(sandbox):
    sandbox.start_master(max_pending_keys=3)
    fakes = [FakeMinion(sandbox, f"flood{i}", accept=False) for i in range(5)]
    watch = EventWatch(sandbox.cfg, "rx/key")
    try:
        assert [f.auth() for f in fakes] == ["pending"] * 5
        assert sorted(_keys(sandbox)["pending"]) == ["flood2", "flood3", "flood4"]
        evicted = [d["id"] for _t, d in watch.drain(1.0) if d["act"] == "evict"]
        assert evicted == ["flood0", "flood1"]
        assert fakes[0].auth() == "pending", "an evicted minion is filed again when it asks again"
        assert sorted(_keys(sandbox)["pending"]) == ["flood0", "flood3", "flood4"]
    finally:
        watch.close()
        for f in fakes:
            f.close()
    assert "max_pending_keys" in sandbox.master.output()
