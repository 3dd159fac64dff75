"""Every matcher and operator, table-driven over a fleet of fake grain sets.

`db9` has no cached grains: the master must expect it only where the target
could match it (three-valued result), never where the id alone rules it out.
"""

from __future__ import annotations

import pytest

from rx.targeting import MinionFacts, TargetError, compile_target, expand_nodegroups

FLEET = [
    MinionFacts("web1", {"os": "Debian", "roles": ["web"], "ipv4": ["10.0.0.1", "127.0.0.1"], "env": "prod",
                         "a": {"b": "c"}, "ipv6": ["fe80::1"], "virtual": True}),
    MinionFacts("web2", {"os": "Ubuntu", "roles": ["web", "cache"], "ipv4": ["10.0.0.2"], "env": "dev",
                         "a": {"b": "d"}, "ipv6": []}),
    MinionFacts("db1", {"os": "Debian", "roles": ["db"], "ipv4": ["10.0.1.1"], "env": "prod", "a": {"b:x": "y"}}),
    MinionFacts("DB2", {"os": "RedHat", "roles": [], "ipv4": ["192.168.1.5"], "env": "prod"}),
    MinionFacts("db9", None),
]
NODEGROUPS = {"webs": "web*", "prod": "G@env:prod", "prodweb": "N@webs and N@prod", "listed": ["db1", "DB2"],
              "loop1": "N@loop2", "loop2": "N@loop1", "self": "N@self"}

CASES = [
    # glob on id (case-sensitive)
    ("*", "glob", {"web1", "web2", "db1", "DB2", "db9"}, set()),
    ("web*", "glob", {"web1", "web2"}, set()),
    ("db?", "glob", {"db1", "db9"}, set()),
    ("DB*", "glob", {"DB2"}, set()),
    ("web[2-3]", "glob", {"web2"}, set()),
    # regex on id, anchored at the start like re.match
    ("web", "pcre", {"web1", "web2"}, set()),
    ("eb", "pcre", set(), set()),
    (r"db\d$", "pcre", {"db1", "db9"}, set()),
    ("(?i)db", "pcre", {"db1", "DB2", "db9"}, set()),
    # list
    ("web1,db1", "list", {"web1", "db1"}, set()),
    ("web1 db9  nothere", "list", {"web1", "db9"}, set()),
    # grain glob (values case-insensitive), lists, nested keys
    ("os:Debian", "grain", {"web1", "db1", "db9"}, {"db9"}),
    ("os:debian", "grain", {"web1", "db1", "db9"}, {"db9"}),
    ("os:*u*", "grain", {"web2", "db9"}, {"db9"}),
    ("roles:web", "grain", {"web1", "web2", "db9"}, {"db9"}),
    ("a:b:c", "grain", {"web1", "db9"}, {"db9"}),
    ("virtual:true", "grain", {"web1", "db9"}, {"db9"}),
    ("nosuch:thing", "grain", {"db9"}, {"db9"}),
    # grain regex
    ("os:(Debian|Ubuntu)$", "grain_pcre", {"web1", "web2", "db1", "db9"}, {"db9"}),
    ("os:Deb", "grain_pcre", {"web1", "db1", "db9"}, {"db9"}),
    ("ipv4:10\\.0\\.0\\.", "grain_pcre", {"web1", "web2", "db9"}, {"db9"}),
    # ipcidr
    ("10.0.0.0/24", "ipcidr", {"web1", "web2", "db9"}, {"db9"}),
    ("10.0.0.0/16", "ipcidr", {"web1", "web2", "db1", "db9"}, {"db9"}),
    ("192.168.1.5", "ipcidr", {"DB2", "db9"}, {"db9"}),
    ("fe80::/10", "ipcidr", {"web1", "db9"}, {"db9"}),
    # compound: operators, precedence not > and > or, parentheses, bare globs
    ("web* and G@os:Debian", "compound", {"web1"}, set()),
    ("web* or G@os:RedHat", "compound", {"web1", "web2", "DB2", "db9"}, {"db9"}),
    ("not web*", "compound", {"db1", "DB2", "db9"}, set()),
    ("not G@os:Debian", "compound", {"web2", "DB2", "db9"}, {"db9"}),
    ("db* or web1 and G@env:dev", "compound", {"db1", "db9"}, set()),
    ("( db* or web1 ) and G@env:prod", "compound", {"web1", "db1", "db9"}, {"db9"}),
    ("(db* or web1) and G@env:prod", "compound", {"web1", "db1", "db9"}, {"db9"}),
    ("not not web1", "compound", {"web1"}, set()),
    ("not web* and not G@os:Debian", "compound", {"DB2", "db9"}, {"db9"}),
    ("L@web1,db9 and E@db", "compound", {"db9"}, set()),
    ("S@10.0.0.0/8 and P@roles:^c", "compound", {"web2", "db9"}, {"db9"}),
    ("E@web(1|2) and not G@roles:cache", "compound", {"web1"}, set()),
    ("(P@os:(Debian|Ubuntu)$) and (web*)", "compound", {"web1", "web2"}, set()),
    ("((web1 or db1)) and not (G@env:dev)", "compound", {"web1", "db1"}, set()),
    ("( " * 60 + "web1" + " )" * 60, "compound", {"web1"}, set()),
    ("G@os:Debian and not G@os:Debian", "compound", {"db9"}, {"db9"}),
    ("web1 or G@nosuch:x", "compound", {"web1", "db9"}, {"db9"}),
    ("web1 and G@nosuch:x", "compound", set(), set()),
    # nodegroups (expanded on the master)
    ("webs", "nodegroup", {"web1", "web2"}, set()),
    ("prodweb", "nodegroup", {"web1"}, set()),
    ("listed", "nodegroup", {"db1", "DB2"}, set()),
    ("N@listed or web2", "compound", {"db1", "DB2", "web2"}, set()),
]


@pytest.mark.parametrize("tgt, tgt_type, expected, unknown", CASES)
def test_matcher_table(tgt, tgt_type, expected, unknown):
    target = compile_target(tgt, tgt_type, nodegroups=NODEGROUPS)
    got, got_unknown = target.select(FLEET)
    assert set(got) == expected
    assert set(got_unknown) == unknown


@pytest.mark.parametrize("tgt, tgt_type, expected, unknown", CASES)
def test_minion_side_agrees_after_nodegroup_expansion(tgt, tgt_type, expected, unknown):
    """The minion (no nodegroup table, grains known) decides exactly like the master."""
    wire_tgt, wire_type = expand_nodegroups(tgt, tgt_type, NODEGROUPS)
    minion_side = compile_target(wire_tgt, wire_type)
    for m in FLEET:
        if m.grains is not None:
            assert bool(minion_side.match(m)) == (m.id in expected), m.id


def test_custom_delimiter():
    t = compile_target("a|b|c", "grain", delimiter="|")
    assert t.select(FLEET)[0] == ["db9", "web1"]


@pytest.mark.parametrize("tgt, tgt_type, message", [
    ("web1 and", "compound", "expected a target or '(' at the end"),
    ("( web1 or db1", "compound", "expected ')' at the end"),
    ("web1 or or db1", "compound", "at position 9"),
    ("web1 ) or db1", "compound", "position 6"),
    ("and web1", "compound", "position 1"),
    ("web1 db1", "compound", "expected 'and', 'or' or the end at position 6"),
    ("( )", "compound", "expected a target"),
    ("X@foo", "compound", "unknown target engine X@"),
    ("I@role", "compound", "pillar target 'role' needs the form key:value"),
    ("E@(", "compound", "bad regular expression"),
    ("S@10.0.0.0/33", "compound", "bad IP address or CIDR"),
    ("G@os", "compound", "key:value"),
    ("N@nosuch", "compound", "unknown nodegroup 'nosuch'"),
    ("nosuch", "nodegroup", "unknown nodegroup 'nosuch'"),
    ("loop1", "nodegroup", "nodegroup cycle: loop1 -> loop2 -> loop1"),
    ("self", "nodegroup", "nodegroup cycle: self -> self"),
    ("(", "pcre", "bad regular expression"),
    ("10.0.0.300", "ipcidr", "bad IP address or CIDR"),
    ("not-a-cidr/8", "ipcidr", "bad IP address or CIDR"),
    ("os", "grain", "key:value"),
    ("os:(", "grain_pcre", "bad regular expression"),
    ("", "glob", "empty target"),
    ("   ", "compound", "empty"),
    ("x", "bogus", "unknown target type"),
    ("( " * 5000 + "web1" + " )" * 5000, "compound", "nested deeper than 64"),
    ("not " * 5000 + "web1", "compound", "nested deeper than 64"),
])
def test_bad_targets_are_clear_errors(tgt, tgt_type, message):
    with pytest.raises(TargetError) as err:
        compile_target(tgt, tgt_type, nodegroups=NODEGROUPS)
    assert message in str(err.value)


def test_expand_nodegroup_cycle_is_an_error():
    with pytest.raises(TargetError, match="cycle"):
        expand_nodegroups("loop1", "nodegroup", NODEGROUPS)


@pytest.mark.parametrize("tgt, tgt_type", [("web*", "glob"), ("web", "pcre"), ("web1,db9", "list"),
                                           (["web1", "db9"], "list"), ("os:Debian", "grain"),
                                           ("os:Deb", "grain_pcre"), ("10.0.0.0/16", "ipcidr"),
                                           ("web* or G@os:RedHat", "compound"), ("prodweb", "nodegroup")])
def test_narrowed_target_is_the_original_restricted_to_ids(tgt, tgt_type):
    from rx.targeting import narrowed
    ids = ["web1", "db1", "db9"]
    original = compile_target(tgt, tgt_type, nodegroups=NODEGROUPS)
    wire, wire_type = expand_nodegroups(narrowed(tgt, tgt_type, ids), "compound", NODEGROUPS)
    narrow = compile_target(wire, wire_type)
    for m in FLEET:
        if m.grains is not None:
            assert bool(narrow.match(m)) == (bool(original.match(m)) and m.id in ids), m.id


def test_bad_nodegroups_are_config_errors(tmp_path):
    from rx.config import ConfigError, load_master_config
    for groups, message in (({"a": "N@b", "b": "N@a"}, "cycle"), ({"a": "web1 and"}, "malformed"),
                            ({"a": 5}, "compound expression or a list"), ({"a": ["x", 1]}, "strings"),
                            ({"a": "N@zzz"}, "unknown nodegroup")):
        (tmp_path / "master").write_text(__import__("yaml").safe_dump({"nodegroups": groups}))
        with pytest.raises(ConfigError, match=message) as err:
            load_master_config(str(tmp_path))
        assert "nodegroups" in str(err.value)


@pytest.mark.parametrize("tgt, tgt_type, ids", [
    ("os:Red Hat", "grain", ["a"]),          # a pattern with a space cannot be one compound word
    ("web*", "glob", ["a,b"]),               # an id with a comma would address two minions
    ("web*", "glob", ["web (old)"]),
])
def test_targets_or_ids_that_cannot_be_narrowed_are_bad_requests(tgt, tgt_type, ids):
    from rx.client.local import BadRequest, narrow
    with pytest.raises(BadRequest):
        narrow(tgt, tgt_type, ids)
