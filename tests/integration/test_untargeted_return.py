"""Issue #8 item 4: the holder of one minion's key cannot file a return for a job that did not target
that minion; a minion accepted after a job was published may still return for it if it matches."""

from __future__ import annotations

import json

from conftest import EventWatch, FakeMinion
from rx.client.local import LocalClient
from rx.transport.messages import JobReturn
from tests.support.procs import wait_for
from tests.support.lc_contract import merged
from tests.support.sandbox import minion_identity

REFUSAL = "which the job did not target"


def _forged(jid: str, ret: object = "forged") -> dict:
    return JobReturn(jid=jid, fun="test.ping", fun_args=[], retcode=0, success=True, ret=ret).to_wire()


def test_return_with_a_stolen_key_for_a_job_to_another_minion_is_refused(fleet):
    """A job to m1 only; a fake minion holding m2's real accepted key returns for it: refused, logged, never
    stored or shown; m2 itself keeps working."""
    thief = FakeMinion(fleet, "m2", accept=False)
    thief.identity = minion_identity(fleet.minion_dir("m2") / "root")
    try:
        assert thief.auth() == "accepted"
        with LocalClient(cfg=fleet.cfg) as c:
            jid = c.cmd_async("m1", "test.ping")
            watch = EventWatch(fleet.cfg, f"rx/job/{jid}/ret/m2")
            try:
                reply = thief.send_sealed(thief.sealed("_return", _forged(jid)))
                assert reply["ok"] is False and reply["error"]["type"] == "permission", reply
                assert "did not target m2" in reply["error"]["message"]
                assert watch.drain(0.3) == [], "a refused return fires no event"
            finally:
                watch.close()
            assert merged(c.get_cli_returns(jid, ["m1"], timeout=10)) == {"m1": True}
            assert c.cmd("m2", "test.ping") == {"m2": True}, "the real m2 still answers its own jobs"
        r = fleet.run_cli("rx-run", "jobs.lookup_jid", jid, "--out", "json")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout) == {"m1": True}
        wait_for(lambda: REFUSAL in fleet.master.output() and "from m2" in fleet.master.output(),
                 what="the refusal in the master log")
    finally:
        thief.close()


def test_minion_accepted_after_the_publish_may_return_only_if_it_matches(fleet):
    """The expected set is fixed at publish time; a minion accepted later is judged by the target itself."""
    with LocalClient(cfg=fleet.cfg) as c:
        jid = c.cmd_async("m*", "test.sleep", [1])
        late, stranger = FakeMinion(fleet, "m3"), FakeMinion(fleet, "x3")
        try:
            for fake in (late, stranger):
                assert fake.auth() == "accepted"
            ok = late.send_sealed(late.sealed("_return", _forged(jid, "late")))
            assert ok["ok"] is True, "m3 matches m* (accepted after the job was published)"
            refused = stranger.send_sealed(stranger.sealed("_return", _forged(jid)))
            assert refused["ok"] is False and refused["error"]["type"] == "permission"
        finally:
            late.close()
            stranger.close()
        returns = merged(c.get_cli_returns(jid, ["m1", "m2"], timeout=10))
    assert returns == {"m1": True, "m2": True, "m3": "late"}
