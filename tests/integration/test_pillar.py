"""Pillar through real daemons: a top file targeting by grains and by id reaches only the right minions; `-I`/`-J`
agree with what `pillar.item` says on each minion; another minion's attempt to read a pillar is refused and
logged, and a sealed reply opens only for its own request; secrets stay out of logs (at debug), events and the
job cache; a render error (Jinja, a bad target, a file that is not a map, traversal in an include) names the file
and line while the minion keeps its last good pillar, also across its restart; the scheduled refresh."""

from __future__ import annotations

import json
import os
import stat
import textwrap
from pathlib import Path

import pytest

from rx.transport.codec import decode
from rx.transport.messages import parse_request
from rx.transport.secure import Rejected, open_reply
from tests.integration.conftest import EventWatch, FakeMinion
from tests.support.procs import wait_for

SECRET = "db-pw-7f3c9e1a"
M1_ONLY = "m1-token-51d0"
TOP = """\
    base:
      '*':
        - common
      'role:db':
        - match: grain
        - db.secrets
      'm1':
        - m1
      'G@role:web and not m1':
        - match: compound
        - web
    """


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def pillar_root(box) -> Path:
    return Path(box.cfg.pillar_roots["base"][0])


def rx(box, *args: str):
    return box.run_cli("rx", *args, "--out", "json")


def jout(r, code: int = 0) -> dict:
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    return json.loads(r.stdout)


def targeted(box, *args: str) -> list[str]:
    r = rx(box, *args, "test.ping")
    return sorted(jout(r, r.returncode if r.returncode == 4 else 0))


@pytest.fixture
def pillar_fleet(sandbox):
    """A master with pillar files and minions m1 (role db) and m2 (role web), everything logging at debug."""
    sandbox.start_master(log_level="debug")
    write(pillar_root(sandbox), {
        "top.sls": TOP,
        "common.sls": "#!jinja|yaml\nwho: {{ id }}\nrole: {{ grains.role }}\nsite: lab\n",
        "db/secrets.sls": f"db:\n  password: {SECRET}\n  port: 5432\n",
        "m1.sls": f"token: {M1_ONLY}\n",
        "web.sls": "web:\n  vhosts: [a.example, b.example]\n"})
    sandbox.start_minion("m1", grains={"role": "db"}, log_level="debug")
    sandbox.start_minion("m2", grains={"role": "web"}, log_level="debug")
    return sandbox


def test_pillar_reaches_only_the_right_minions_and_targets_agree(pillar_fleet):
    box = pillar_fleet
    with EventWatch(box.cfg) as bus:
        keys = {m: jout(rx(box, m, "pillar.ls"))[m] for m in ("m1", "m2")}
        assert sorted(keys["m1"]) == ["db", "role", "site", "token", "who"]
        assert sorted(keys["m2"]) == ["role", "site", "web", "who"]
        assert jout(rx(box, "*", "saltutil.refresh_pillar")) == {"m1": True, "m2": True}
        events = bus.drain(0.5)

    # -I / -J / I@ agree with pillar.item on each minion
    items = {m: jout(rx(box, m, "pillar.item", "role", "who", "site", "db:port", "web:vhosts"))[m] for m in ("m1", "m2")}
    assert items["m1"]["who"] == "m1" and items["m2"]["role"] == "web"
    for expr, want in [("role:db", lambda i: i["role"] == "db"), ("site:lab", lambda i: i["site"] == "lab"),
                       ("db:port:5432", lambda i: i["db:port"] == 5432),
                       ("web:vhosts:b.example", lambda i: "b.example" in (i["web:vhosts"] or []))]:
        assert targeted(box, "-I", expr) == sorted(m for m in items if want(items[m])), expr
    assert targeted(box, "-J", "who:m[12]$") == ["m1", "m2"]
    assert targeted(box, "-J", "role:D") == []
    assert targeted(box, "-C", "I@role:web and G@role:web") == ["m2"]
    assert targeted(box, "-I", "token:*") == ["m1"]

    # secrets: not in the logs (at debug), not on the bus, not in the master's job cache, not on the minions' disks
    for text in [box.master.output(), box.minions["m1"].output(), box.minions["m2"].output(), repr(events)]:
        assert SECRET not in text and M1_ONLY not in text
    cachedir = Path(box.cfg.cachedir)
    cached = cachedir / "pillar"
    for path in [*cachedir.rglob("*"), *box.minion_dir("m1").rglob("*")]:
        if path.is_file() and not path.is_relative_to(cached):
            assert SECRET.encode() not in path.read_bytes(), path
    assert stat.S_IMODE(cached.stat().st_mode) == 0o700 and sorted(os.listdir(cached)) == ["m1", "m2"]
    assert stat.S_IMODE((cached / "m1").stat().st_mode) == 0o600
    assert decode((cached / "m1").read_bytes())["db"]["password"] == SECRET  # the master's copy, for I@/J@

    # the secrets reach m1, never m2
    assert jout(rx(box, "*", "pillar.get", "db:password", "default=absent")) == {"m1": SECRET, "m2": "absent"}
    assert jout(rx(box, "*", "config.get", "token")) == {"m1": M1_ONLY, "m2": ""}


def test_another_minions_pillar_is_refused_and_logged(pillar_fleet):
    box = pillar_fleet
    thief = FakeMinion(box, "m3")
    try:
        assert thief.auth() == "accepted"
        asked = {"grains": {"role": "web"}, "pillarenv": ""}
        # naming another minion: refused, and the master says so in its log
        reply = thief.send_sealed(thief.sealed("_pillar", {**asked, "id": "m1"}))
        assert reply["ok"] is False and reply["error"]["type"] == "permission", reply
        assert "gets only its own pillar" in reply["error"]["message"]
        wait_for(lambda: "refused a pillar request: minion 'm3' asked for the pillar of 'm1'" in box.master.output(),
                 what="the refusal in the master's log")
        # claiming to be m1 in the envelope: the request does not open under m1's key
        reply = thief.send_sealed(thief.sealed("_pillar", asked, claim_id="m1"))
        assert reply["ok"] is False and reply["error"]["type"] == "auth", reply
        wait_for(lambda: "sealed request claiming 'm1' does not open" in box.master.output(),
                 what="the forged request in the master's log")
        # its own pillar: compiled for the id its key proved, whatever it says of itself in its grains
        own = thief.send_sealed(thief.sealed("_pillar", {"grains": {"role": "web", "id": "m1"}}))
        assert own["ok"] is True and own["pillar"]["who"] == "m3" and "token" not in own["pillar"], own
        # the sealed reply opens for the request it answers only
        first, second = thief.sealed("_pillar", asked), thief.sealed("_pillar", asked)
        sealed_reply = thief.raw.request(None, raw=first)
        with pytest.raises(Rejected):
            open_reply(thief.session.request_key, parse_request(decode(second)), sealed_reply)
        assert open_reply(thief.session.request_key, parse_request(decode(first)), sealed_reply)["ok"] is True
        # a missing environment: the error, with the last pillar this minion was sent
        missing = thief.send_sealed(thief.sealed("_pillar", {"grains": {}, "pillarenv": "nope"}))
        assert missing["ok"] is True and missing["pillar"]["who"] == "m3", missing
        assert missing["error"] == "pillarenv: environment 'nope' is not in the master's pillar_roots (it has: base)"
        for bad in ({"grains": []}, {"grains": {}, "pillarenv": "../base"}, {"grains": {}, "id": "../m1"}):
            reply = thief.send_sealed(thief.sealed("_pillar", bad))
            assert reply["ok"] is False and reply["error"]["type"] == "bad_request", (bad, reply)
    finally:
        thief.close()
    # a minion whose pillar the master has not compiled is "unknown" for a pillar target: expected, flagged
    unknown = FakeMinion(box, "m4")
    try:
        preview = box.run_cli("rx", "--preview-target", "-I", "role:web", "--out", "json")
        assert json.loads(preview.stdout) == ["m2", "m3", "m4"], preview
        assert "m4" in preview.stderr and "m3" not in preview.stderr  # listed only for lack of a cached pillar
    finally:
        unknown.close()


def test_render_errors_keep_the_last_good_pillar(pillar_fleet):
    box = pillar_fleet
    root = pillar_root(box)
    outside = box.root / "outside"
    write(outside, {"stolen.sls": "stolen: outside-the-root\n"})
    good = (root / "common.sls").read_text()
    broken = [
        ("common.sls", "#!jinja|yaml\nwho: {{ id }}\nrole: {{ grains.nope.deeper }}\n", "base:common.sls line 3",
         "UndefinedError"),
        ("common.sls", "#!jinja|yaml\n{% if %}\n", "base:common.sls line 2", "Jinja syntax error"),
        ("common.sls", f"- {SECRET}\n- b\n", "base:common.sls", "is not a map but a list"),
        ("top.sls", TOP.replace("'m1':", "'m1 and or':"), "base:top.sls line 7", "malformed compound target"),
        ("common.sls", "include:\n  - ..stolen\n", "base:common.sls", "goes above the pillar root"),
        ("common.sls", "#!jinja|yaml\n{% include '../outside/stolen.sls' %}\n", "base:common.sls line 2",
         "not a plain name inside the pillar root"),
        ("common.sls", None, "base:common.sls", "a symlink takes it out of its pillar root"),
    ]
    top = (root / "top.sls").read_text()
    for name, text, where, message in broken:
        if text is None:
            (root / name).unlink()
            os.symlink(outside / "stolen.sls", root / name)
        else:
            (root / name).write_text(text)
        r = rx(box, "*", "saltutil.refresh_pillar")
        out = jout(r, 1)
        for m in ("m1", "m2"):
            assert where in out[m] and message in out[m], (name, out[m])
            assert SECRET not in out[m] and "outside-the-root" not in out[m]
        # the last good pillar is kept on the minions and in the master's cache (targets agree)
        assert jout(rx(box, "*", "pillar.get", "who")) == {"m1": "m1", "m2": "m2"}
        assert targeted(box, "-I", "role:db") == ["m1"]
        (root / name).unlink()
        (root / "top.sls").write_text(top)
        (root / "common.sls").write_text(good)
    assert "outside-the-root" not in box.master.output() + box.minions["m1"].output()

    # broken while m1 restarts: m1 gets back the last pillar it was sent, and says why it is not a new one
    (root / "common.sls").write_text("#!jinja|yaml\n{% if %}\n")
    assert box.minions["m1"].stop() == 0
    box.start_minion("m1", grains={"role": "db"}, log_level="debug")
    assert jout(rx(box, "m1", "pillar.get", "db:port")) == {"m1": 5432}
    assert "pillar not refreshed (the last one is kept): base:common.sls line 2" in box.minions["m1"].output()
    (root / "common.sls").write_text(good)
    assert jout(rx(box, "m1", "saltutil.refresh_pillar")) == {"m1": True}


def test_a_minion_that_never_got_a_pillar_says_why(sandbox):
    sandbox.start_master()
    write(pillar_root(sandbox), {"top.sls": "base:\n  '*': [a]\n", "a.sls": "{% if %}\n"})
    sandbox.start_minion("m1")
    r = rx(sandbox, "m1", "pillar.items")
    assert "this minion has no pillar: base:a.sls line 1: Jinja syntax error" in jout(r, 1)["m1"]
    assert jout(rx(sandbox, "m1", "config.get", "a", "default=fallback")) == {"m1": "fallback"}
    # unknown to the master (expected, flagged as the grains case is), and the minion does not run it
    assert jout(rx(sandbox, "-I", "a:*", "test.ping")) == {"m1": "Minion did not return. [no grains cached]"}
    (pillar_root(sandbox) / "a.sls").write_text("a: fixed\n")
    assert jout(rx(sandbox, "m1", "saltutil.refresh_pillar")) == {"m1": True}
    assert jout(rx(sandbox, "m1", "pillar.items")) == {"m1": {"a": "fixed"}}


def test_the_scheduled_refresh(sandbox):
    sandbox.start_master()
    write(pillar_root(sandbox), {"top.sls": "base:\n  '*': [a]\n", "a.sls": "v: 1\n"})
    sandbox.start_minion("m1", pillar_refresh_interval=0.5)
    assert jout(rx(sandbox, "m1", "pillar.get", "v")) == {"m1": 1}
    (pillar_root(sandbox) / "a.sls").write_text("v: 2\n")
    wait_for(lambda: targeted(sandbox, "-I", "v:2") == ["m1"], what="the master's pillar cache to be refreshed")
    assert jout(rx(sandbox, "m1", "pillar.get", "v")) == {"m1": 2}
