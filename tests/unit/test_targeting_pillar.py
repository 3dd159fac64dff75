"""Pillar targets (`-I`/`I@` glob, `-J`/`J@` regex) in rx.targeting: the grain rules on the pillar, three-valued
on the master (a minion whose pillar is not cached is unknown), plain booleans on a minion."""

from __future__ import annotations

import pytest

from rx.targeting import MinionFacts, as_compound, compile_target, narrowed

PILLARS = {
    "web1": {"role": "web", "apps": ["nginx", "php"], "db": {"host": "db1", "port": 5432}, "tier": {"front": True}},
    "web2": {"role": "web", "apps": ["nginx"], "db": {"host": "db2"}},
    "db1": {"role": "db", "apps": [], "secret": "s3cr3t"},
    "new1": {},
}
GRAINS = {"web1": {"os": "Debian"}, "web2": {"os": "Ubuntu"}, "db1": {"os": "Debian"}, "new1": {"os": "Debian"}}


def _facts(mid: str, pillar: bool = True) -> MinionFacts:
    return MinionFacts(mid, GRAINS[mid], PILLARS[mid] if pillar else None)


def _matches(tgt: str, tgt_type: str) -> list[str]:
    target = compile_target(tgt, tgt_type)
    return sorted(m for m in PILLARS if target.match(_facts(m)))


@pytest.mark.parametrize("tgt, tgt_type, expect", [
    ("role:web", "pillar", ["web1", "web2"]),
    ("role:WEB", "pillar", ["web1", "web2"]),          # a glob value ignores case, as -G
    ("role:w*", "pillar", ["web1", "web2"]),
    ("apps:php", "pillar", ["web1"]),                  # a list matches on any item
    ("db:host:db*", "pillar", ["web1", "web2"]),       # nested keys
    ("db:port:5432", "pillar", ["web1"]),              # numbers as text
    ("tier:front:true", "pillar", ["web1"]),
    ("db:host", "pillar", ["web1", "web2"]),           # a map matches on its keys
    ("nope:*", "pillar", []),
    ("role:(web|db)$", "pillar_pcre", ["db1", "web1", "web2"]),
    ("role:W", "pillar_pcre", []),                     # a regex is case-sensitive
    ("I@role:web and G@os:Debian", "compound", ["web1"]),
    ("J@db:host:db[12] and not web2", "compound", ["web1"]),
    ("I@role:db or I@apps:nginx", "compound", ["db1", "web1", "web2"]),
])
def test_pillar_matching(tgt, tgt_type, expect):
    assert _matches(tgt, tgt_type) == expect


@pytest.mark.parametrize("tgt, tgt_type, expect", [
    ("role:web", "pillar", None),
    ("I@role:web or web1", "compound", True),
    ("I@role:web and db*", "compound", False),
    ("not I@role:web", "compound", None),
])
def test_without_a_cached_pillar_the_answer_may_be_unknown(tgt, tgt_type, expect):
    assert compile_target(tgt, tgt_type).match(_facts("web1", pillar=False)) is expect


def test_select_lists_unknown_pillars_as_expected():
    target = compile_target("I@role:web", "compound")
    facts = [_facts("web1"), _facts("db1"), _facts("web2", pillar=False)]
    assert target.select(facts) == (["web1", "web2"], ["web2"])


def test_targets_say_what_they_need():
    assert (compile_target("role:web", "pillar").uses_pillar, compile_target("role:web", "pillar").uses_grains) \
        == (True, False)
    both = compile_target("I@role:web and G@os:Debian", "compound")
    assert both.uses_pillar and both.uses_grains
    assert not compile_target("G@os:Debian", "compound").uses_pillar
    assert not compile_target("web*", "glob").uses_pillar


def test_narrowing_keeps_the_pillar_test():
    assert as_compound("role:web", "pillar") == "I@role:web"
    assert as_compound("role:w.*", "pillar_pcre") == "J@role:w.*"
    target = compile_target(narrowed("role:web", "pillar", ["web1", "db1"]), "compound")
    assert sorted(m for m in PILLARS if target.match(_facts(m))) == ["web1"]


def test_a_minion_without_a_pillar_is_not_targeted_by_it():
    # the minion's gate turns unknown into "not mine": a minion that has no pillar runs no pillar-targeted job
    assert not compile_target("role:web", "pillar").match(_facts("web1", pillar=False))
    assert compile_target("role:web", "pillar").match(MinionFacts("web1", {}, {"role": "web"})) is True
