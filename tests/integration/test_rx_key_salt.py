"""Issue #13: rx-key with salt-key's flags, on a real master: -l STATE, -p/-P, --include-accepted,
--include-all, -q, -y, --rotate with minions running, and --gen-keys used end to end (a minion started
with a preseeded key, accepted before it ever ran)."""

from __future__ import annotations

import base64
import json
import shutil
import stat
from pathlib import Path

from conftest import FakeMinion
from rx.client.local import LocalClient
from tests.support.procs import wait_for
from tests.support.sandbox import key_fingerprint, session_keys


def _keys(box) -> dict:
    r = box.run_cli("rx-key", "-L", "--out", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_a_preseeded_minion_key_is_accepted_before_the_minion_first_starts(sandbox, tmp_path):
    sandbox.start_master()
    gen = tmp_path / "keys"
    r = sandbox.run_cli("rx-key", "--gen-keys", "m3", "--gen-keys-dir", str(gen))
    assert r.returncode == 0, r.stderr
    fingerprint = r.stdout.strip()
    assert stat.S_IMODE((gen / "m3.key").stat().st_mode) == 0o600
    assert "minion.key" in r.stderr and "minions/m3" in r.stderr
    # what automation does: the private key to the minion, the public key into the master's accepted keys
    minion_pki = sandbox.minion_dir("m3") / "root" / "etc" / "rx" / "pki" / "minion"
    minion_pki.mkdir(parents=True, mode=0o700)
    shutil.copy(gen / "m3.key", minion_pki / "minion.key")
    shutil.copy(gen / "m3.pub", Path(sandbox.cfg.pki_dir) / "minions" / "m3")
    assert _keys(sandbox)["accepted"] == ["m3"]
    sandbox.start_minion("m3", accept=False)  # the sandbox files no key: the minion uses the preseeded one
    with LocalClient(cfg=sandbox.cfg) as c:
        assert c.cmd("m3", "test.ping") == {"m3": True}
    assert key_fingerprint(sandbox.cfg, "m3") == fingerprint
    assert (minion_pki / "minion.pub").read_bytes() == base64.b64decode((gen / "m3.pub").read_bytes())
    assert _keys(sandbox) == {"accepted": ["m3"], "denied": [], "pending": [], "rejected": []}
    # run again: the pair is kept, not replaced
    r = sandbox.run_cli("rx-key", "--gen-keys", "m3", "--gen-keys-dir", str(gen), "-q")
    assert r.returncode == 0 and r.stdout.strip() == fingerprint and r.stderr == ""


def test_rotate_while_minions_run(fleet):
    before = session_keys(fleet.cfg).serial
    r = fleet.run_cli("rx-key", "--rotate")
    assert r.returncode == 0 and f"serial {before + 1}" in r.stdout, r.stdout + r.stderr
    assert session_keys(fleet.cfg).serial == before + 1
    with LocalClient(cfg=fleet.cfg) as c:  # the minions authenticate again and run the next job
        assert wait_for(lambda: c.cmd("*", "test.ping", timeout=5) == {"m1": True, "m2": True},
                        what="both minions answering after the rotation")
    r = fleet.run_cli("rx-key", "--rotate", "--out", "json")
    assert r.returncode == 0 and json.loads(r.stdout) == {"serial": before + 2}


def test_salt_key_listing_printing_and_include_rules(sandbox):
    sandbox.start_master()
    accepted = FakeMinion(sandbox, "acc1")
    pending = [FakeMinion(sandbox, name, accept=False) for name in ("pre1", "pre2")]
    try:
        assert accepted.auth() == "accepted" and all(f.auth() == "pending" for f in pending)
        for word, state in (("acc", "accepted"), ("un", "pending"), ("pre", "pending"), ("rej", "rejected"),
                            ("den", "denied")):
            r = sandbox.run_cli("rx-key", "-l", word, "--out", "json")
            assert r.returncode == 0 and json.loads(r.stdout) == {state: _keys(sandbox)[state]}
        r = sandbox.run_cli("rx-key", "-l", "all")
        assert r.stdout.splitlines() == ["Accepted Keys:", "acc1", "Denied Keys:", "Unaccepted Keys:", "pre1", "pre2",
                                         "Rejected Keys:"]
        assert sandbox.run_cli("rx-key").stdout == r.stdout  # no action: list all, as salt-key does
        r = sandbox.run_cli("rx-key", "-l", "bogus")
        assert r.returncode == 2 and "'bogus' is not a valid argument to --list" in r.stderr
        # -p / -P: the public keys, as the key store holds them
        r = sandbox.run_cli("rx-key", "-p", "acc1")
        b64 = base64.b64encode(accepted.identity.public).decode()
        assert r.returncode == 0 and r.stdout.splitlines() == ["Accepted Keys:", f"acc1:  {b64}"]
        r = sandbox.run_cli("rx-key", "-P", "--out", "json")
        assert json.loads(r.stdout) == {"accepted": {"acc1": b64}, "pending": {
            f.id: base64.b64encode(f.identity.public).decode() for f in pending}}
        assert sandbox.run_cli("rx-key", "-p", "nobody").returncode == 1
        # -r takes pending keys only, unless --include-accepted (Salt's rule)
        r = sandbox.run_cli("rx-key", "-r", "acc1", "-y")
        assert r.returncode == 1 and "does not match any unaccepted keys" in r.stderr
        assert _keys(sandbox)["accepted"] == ["acc1"]
        r = sandbox.run_cli("rx-key", "-r", "*1", "-y", "--include-all")
        assert r.returncode == 0
        assert r.stdout.splitlines() == ["The following keys are going to be rejected:", "Accepted Keys:", "acc1",
                                         "Unaccepted Keys:", "pre1", "Key for minion acc1 rejected.",
                                         "Key for minion pre1 rejected."]
        assert _keys(sandbox)["rejected"] == ["acc1", "pre1"]
        # -q: nothing printed for a change; --include-all with -A takes rejected keys back
        r = sandbox.run_cli("rx-key", "-A", "-y", "-q", "--include-all")
        assert r.returncode == 0 and r.stdout == "" and r.stderr == ""
        assert _keys(sandbox) == {"accepted": ["acc1", "pre1", "pre2"], "denied": [], "pending": [], "rejected": []}
        # deleting asks, with No as the default answer (salt-key's [N/y]): without a terminal it needs -y
        r = sandbox.run_cli("rx-key", "-D")
        assert r.returncode == 2 and "-y" in r.stderr and len(_keys(sandbox)["accepted"]) == 3
    finally:
        for f in [accepted, *pending]:
            f.close()
