"""`rx '*' test.ping` end to end, the first modules, the CLI and LocalClient."""

from __future__ import annotations

import json

from rx.client.local import LocalClient


def test_ping_through_localclient(fleet):
    with LocalClient(cfg=fleet.cfg) as client:
        assert client.cmd("*", "test.ping") == {"m1": True, "m2": True}
        assert client.cmd("m1", "test.echo", ["hello"]) == {"m1": "hello"}
        assert client.cmd("m*", "test.ping", tgt_type="glob") == {"m1": True, "m2": True}


def test_cli_json_and_exit_code(fleet):
    r = fleet.run_cli("rx", "*", "test.ping", "--out", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"m1": True, "m2": True}


def test_minion_learns_the_publish_port_from_the_master(sandbox):
    """Minion configs name only `master` and `master_port` (the sandbox writes no publish_port): the
    port comes from the auth reply, on a master whose ports are far from the defaults.  An explicit
    publish_port in the minion config still overrides it."""
    sandbox.start_master()
    assert "publish_port" not in sandbox.minion_config("m1")
    sandbox.start_minion("m1")
    sandbox.start_minion("m2", publish_port=sandbox.pub_port)
    r = sandbox.run_cli("rx", "*", "test.ping", "--out", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"m1": True, "m2": True}
