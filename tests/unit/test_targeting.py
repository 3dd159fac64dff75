"""rx.targeting: one grammar for the master (expected set) and the minion (self-match)."""

from __future__ import annotations

import re

import pytest

from rx.targeting import MinionFacts, TargetError, compile_target, expand_nodegroups

GRAINS = {
    "web1": {"os": "Debian", "roles": ["web", "cache"], "cpus": 4, "virtual": True, "ipv4": ["10.0.0.5", "127.0.0.1"],
             "ipv6": ["fe80::1"], "hw": {"vendor": {"name": "Acme"}}, "empty": None},
    "web2": {"os": "Ubuntu", "roles": ["web"], "cpus": 8, "virtual": False, "ipv4": ["10.0.1.7"], "ipv6": []},
    "db1": {"os": "Debian", "roles": ["db"], "cpus": 16, "virtual": False, "ipv4": ["192.168.1.10"], "ipv6": []},
    "Web3": {"os": "CentOS", "roles": [], "cpus": 2, "virtual": True, "ipv4": [], "ipv6": ["2001:db8::7"]},
}
IDS = sorted(GRAINS)
NODEGROUPS = {
    "webs": "web*",
    "debian_webs": "N@webs and G@os:Debian",
    "dbs": ["db1", "db9"],
    "either": "N@dbs or N@debian_webs",
    "loop_a": "N@loop_b",
    "loop_b": "N@loop_a",
    "broken": "web1 and",
}


def _known(minion_id: str) -> MinionFacts:
    return MinionFacts(minion_id, GRAINS[minion_id])


def _matches(tgt, tgt_type, **kw) -> list[str]:
    target = compile_target(tgt, tgt_type, **kw)
    return sorted(m for m in IDS if target.match(_known(m)))


MATCHES = [
    # glob on the id: the whole id, case-sensitive
    ("*", "glob", IDS),
    ("web*", "glob", ["web1", "web2"]),
    ("web?", "glob", ["web1", "web2"]),
    ("web[2-9]", "glob", ["web2"]),
    ("[!w]*", "glob", ["Web3", "db1"]),
    ("web", "glob", []),
    ("web1", "glob", ["web1"]),
    ("*1", "glob", ["db1", "web1"]),
    ("WEB*", "glob", []),
    ("web1.example.com", "glob", []),
    # pcre on the id: anchored at the start (as Salt's re.match)
    (r"web\d", "pcre", ["web1", "web2"]),
    (r"(?i)web", "pcre", ["Web3", "web1", "web2"]),
    (r".*1$", "pcre", ["db1", "web1"]),
    (r"eb", "pcre", []),
    (r"web1|db1", "pcre", ["db1", "web1"]),
    # list
    ("web1,db1", "list", ["db1", "web1"]),
    ("web1 db1", "list", ["db1", "web1"]),
    ("web1, db1,,", "list", ["db1", "web1"]),
    (["web2", "nosuch"], "list", ["web2"]),
    ("web*", "list", []),
    # grain glob: case-insensitive value, lists match any element, nested keys
    ("os:Debian", "grain", ["db1", "web1"]),
    ("os:debian", "grain", ["db1", "web1"]),
    ("os:Deb*", "grain", ["db1", "web1"]),
    ("roles:web", "grain", ["web1", "web2"]),
    ("roles:cache", "grain", ["web1"]),
    ("cpus:16", "grain", ["db1"]),
    ("virtual:true", "grain", ["Web3", "web1"]),
    ("hw:vendor:name:acme", "grain", ["web1"]),
    ("hw:vendor:name", "grain", ["web1"]),
    ("ipv6:fe80::1", "grain", ["web1"]),
    ("nosuch:*", "grain", []),
    ("os:Debian:extra", "grain", []),
    # grain regex
    ("os:(Debian|Ubuntu)", "grain_pcre", ["db1", "web1", "web2"]),
    ("os:deb", "grain_pcre", []),
    ("cpus:1[0-9]", "grain_pcre", ["db1"]),
    # ipcidr against the ipv4/ipv6 grains
    ("10.0.0.0/16", "ipcidr", ["web1", "web2"]),
    ("10.0.0.5", "ipcidr", ["web1"]),
    ("192.168.0.0/16", "ipcidr", ["db1"]),
    ("2001:db8::/32", "ipcidr", ["Web3"]),
    ("172.16.0.0/12", "ipcidr", []),
    # compound
    ("web* and G@os:Debian", "compound", ["web1"]),
    ("web* or db*", "compound", ["db1", "web1", "web2"]),
    ("not web*", "compound", ["Web3", "db1"]),
    ("not not web1", "compound", ["web1"]),
    ("G@os:Debian and not L@db1", "compound", ["web1"]),
    ("web1 or web2 and G@os:Debian", "compound", ["web1"]),  # and binds tighter than or
    ("( web1 or web2 ) and G@os:Debian", "compound", ["web1"]),
    ("(web1 or db1) and not G@os:Ubuntu", "compound", ["db1", "web1"]),
    ("( ( web1 ) )", "compound", ["web1"]),
    (r"E@web(1|2) and S@10.0.0.0/8", "compound", ["web1", "web2"]),
    ("P@os:^(Cent|Ubu) or L@db1", "compound", ["Web3", "db1", "web2"]),
    ("N@webs", "compound", ["web1", "web2"]),
    # nodegroups (on the master)
    ("webs", "nodegroup", ["web1", "web2"]),
    ("debian_webs", "nodegroup", ["web1"]),
    ("dbs", "nodegroup", ["db1"]),
    ("either", "nodegroup", ["db1", "web1"]),
]


@pytest.mark.parametrize("tgt, tgt_type, expect", MATCHES, ids=[f"{t}:{x}" for x, t, _ in MATCHES])
def test_matching(tgt, tgt_type, expect):
    assert _matches(tgt, tgt_type, nodegroups=NODEGROUPS) == expect


@pytest.mark.parametrize("tgt, tgt_type", [(t, tt) for t, tt, _ in MATCHES if tt in ("nodegroup", "compound")])
def test_minions_agree_with_the_master_after_nodegroup_expansion(tgt, tgt_type):
    # the master expands nodegroups; a minion (which has no nodegroup table) must decide the same
    expanded, expanded_type = expand_nodegroups(tgt, tgt_type, NODEGROUPS)
    assert "N@" not in str(expanded)
    assert _matches(expanded, expanded_type) == _matches(tgt, tgt_type, nodegroups=NODEGROUPS)


def test_custom_grain_delimiter():
    assert _matches("hw|vendor|name|Acme", "grain", delimiter="|") == ["web1"]
    assert _matches("G@hw|vendor|name|Acme", "compound", delimiter="|") == ["web1"]


# ---------------------------------------------------------------- unknown grains (master side)

@pytest.mark.parametrize("tgt, tgt_type, expect", [
    ("os:Debian", "grain", None),
    ("os:.*", "grain_pcre", None),
    ("10.0.0.0/8", "ipcidr", None),
    ("G@os:Debian", "compound", None),
    ("web1 or G@os:Debian", "compound", True),
    ("db1 or G@os:Debian", "compound", None),
    ("db1 and G@os:Debian", "compound", False),
    ("not G@os:Debian", "compound", None),
    ("web*", "glob", True),
    ("db*", "glob", False),
])
def test_without_cached_grains_the_answer_may_be_unknown(tgt, tgt_type, expect):
    assert compile_target(tgt, tgt_type).match(MinionFacts("web1")) is expect


def test_select_reports_expected_and_unknown():
    target = compile_target("G@os:Debian or L@web2", "compound")
    facts = [_known("web1"), _known("db1"), _known("Web3"), MinionFacts("new1"), MinionFacts("web2")]
    assert target.select(facts) == (["db1", "new1", "web1", "web2"], ["new1"])
    assert target.uses_grains is True
    assert compile_target("web*", "glob").uses_grains is False


def test_minion_side_answers_are_plain_booleans():
    for tgt, tgt_type, _ in MATCHES:
        if tgt_type != "nodegroup" and "N@" not in str(tgt):
            target = compile_target(tgt, tgt_type)
            assert all(target.match(_known(m)) in (True, False) for m in IDS)


# ---------------------------------------------------------------- bad expressions

BAD = [
    ("", "glob", "empty"),
    ("   ", "glob", "empty"),
    ("web*", "sql", "unknown target type"),
    (["web1"], "glob", "must be a string"),
    (["web1"], "pcre", "must be a string"),
    ("(", "pcre", "bad regular expression"),
    ("web[", "pcre", "bad regular expression"),
    ("", "list", "empty"),
    (",,", "list", "empty list"),
    ([], "list", "empty list"),
    ("os", "grain", "key:value"),
    ("os:(Deb", "grain_pcre", "bad regular expression"),
    ("not-an-ip", "ipcidr", "bad IP address"),
    ("10.0.0.0/33", "ipcidr", "bad IP address"),
    ("web1 and", "compound", "malformed compound target"),
    ("and web1", "compound", "malformed compound target"),
    ("web1 or or web2", "compound", "malformed compound target"),
    ("(web1", "compound", "expected ')'"),
    ("web1)", "compound", "malformed compound target"),
    ("web1 web2", "compound", "malformed compound target"),
    ("not", "compound", "malformed compound target"),
    ("I@role", "compound", "pillar target 'role' needs the form key:value"),
    ("J@role:(db", "compound", "bad regular expression in pillar target"),
    ("role", "pillar", "pillar target"),
    ("R@%cluster", "compound", "range"),
    ("X@anything", "compound", "unknown target engine"),
    ("G@os", "compound", "key:value"),
    ("E@(", "compound", "bad regular expression"),
    (["web1"], "compound", "must be a string"),
    ("N@webs", "compound", "only be expanded on the master"),
]


@pytest.mark.parametrize("tgt, tgt_type, message", BAD, ids=[f"{t}:{x!r}" for x, t, _ in BAD])
def test_bad_targets_raise_target_error(tgt, tgt_type, message):
    with pytest.raises(TargetError, match=re.escape(message)):
        compile_target(tgt, tgt_type)


@pytest.mark.parametrize("name, message", [
    ("nosuch", "unknown nodegroup"),
    ("loop_a", "nodegroup cycle"),
    ("broken", "malformed compound target"),
])
def test_bad_nodegroups(name, message):
    with pytest.raises(TargetError, match=message):
        compile_target(name, "nodegroup", nodegroups=NODEGROUPS)
    with pytest.raises(TargetError, match=message):
        compile_target(f"web1 or N@{name}", "compound", nodegroups=NODEGROUPS)


def test_deep_nodegroup_nesting_is_refused():
    groups = {f"g{i}": f"N@g{i + 1}" for i in range(100)}
    groups["g100"] = "web1"
    with pytest.raises(TargetError, match="deeper"):
        compile_target("g0", "nodegroup", nodegroups=groups)


def test_empty_delimiter_is_refused():
    with pytest.raises(TargetError):
        compile_target("os:Debian", "grain", delimiter="")


def test_target_error_is_a_value_error():
    assert issubclass(TargetError, ValueError)
