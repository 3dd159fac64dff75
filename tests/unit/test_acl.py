"""rx.acl: Salt's ACL format parsed into rules (anything not understood refused at load), and matching."""

from __future__ import annotations

import re

import pytest

from rx.acl import AclError, name_matches, parse_acl, parse_table

RESOLVED = {"web*": frozenset({"web1", "web2"}), "G@os:Debian": frozenset({"web1", "db1"}),
            "nosuch*": frozenset()}
"""What the master's matcher would say each rule target definitely matches."""

ACL = parse_acl([
    "test.version",
    {"web*": ["test.*", "network.*"]},
    {"G@os:Debian": [{"cmd.run": {"args": ["ls .*", None], "kwargs": {"cwd": "/tmp"}}}, "pkg.version"]},
    {"nosuch*": ["state.apply"]},
    "@jobs",
    {"@runner": ["manage.status", "jobs\\.list_.*"]},
    {"@key": ["list_all"]},
], "test")

MINION_CASES = [
    # (function, args, kwargs, minion, allowed)
    ("test.version", [], {}, "db1", True),              # a bare function pattern: every minion
    ("test.versions", [], {}, "db1", False),            # the whole name must match (not a prefix, as in Salt)
    ("test.ping", [], {}, "web2", True),                # web*: test.*
    ("test.ping", [], {}, "db1", False),                # db1 is not web*
    ("network.interfaces", [], {}, "web1", True),
    ("pkg.version", ["bash"], {}, "db1", True),         # G@os:Debian
    ("pkg.version", ["bash"], {}, "web2", False),       # web2 is not Debian
    ("cmd.run", ["ls -l", "x"], {"cwd": "/tmp"}, "db1", True),
    ("cmd.run", ["ls -l", "x"], {"cwd": "/etc"}, "db1", False),   # kwarg does not match
    ("cmd.run", ["ls -l"], {"cwd": "/tmp"}, "db1", False),        # the second (any) argument is missing
    ("cmd.run", ["rm -rf /", "x"], {"cwd": "/tmp"}, "db1", False),
    ("cmd.run", ["ls -l", "x"], {}, "db1", False),                # the named kwarg is required
    ("state.apply", [], {}, "web1", False),             # nosuch* matches no minion: grants nothing
    ("state.apply", [], {}, "nosuch1", False),          # not resolved to it either
    ("jobs.list_jobs", [], {}, "web1", False),          # runner rights are not minion rights
]


@pytest.mark.parametrize("fun,args,kwargs,minion,allowed", MINION_CASES)
def test_minion_rights(fun, args, kwargs, minion, allowed):
    assert ACL.allows_minion(fun, args, kwargs, minion, RESOLVED) is allowed


SPEC_CASES = [
    ("runner", "jobs.list_jobs", True),     # @jobs: the module, in both forms
    ("wheel", "jobs.anything", True),
    ("runner", "manage.status", True),      # {@runner: [...]}: full names
    ("runner", "manage.up", False),
    ("runner", "jobs.lookup_jid", True),    # @jobs again
    ("wheel", "key.list_all", True),        # {@key: [list_all]}: function names of that module
    ("wheel", "key.accept", False),
    ("runner", "key.list_all", True),       # @<module> covers both forms, as in Salt
    ("wheel", "config.values", False),
]


@pytest.mark.parametrize("form,fun,allowed", SPEC_CASES)
def test_runner_and_wheel_rights(form, fun, allowed):
    assert ACL.allows_spec(form, fun) is allowed


def test_at_runner_and_at_wheel_strings():
    acl = parse_acl(["@runner", "@wheels"], "t")
    assert acl.allows_spec("runner", "anything.at_all") and acl.allows_spec("wheel", "key.delete")
    assert not acl.allows_minion("test.ping", [], {}, "m1", {})
    assert not parse_acl(["@runner"], "t").allows_spec("wheel", "key.delete")


BAD = [
    ("not a list", "expected a list of rights"),
    ([42], "expected a function pattern"),
    (["test.(("], "not a regular expression"),
    ([""], "not a pattern"),
    ([{"web*": []}], "an empty list of functions grants nothing"),
    ([{"web* and": ["test.ping"]}], "target 'web* and'"),
    ([{"N@nosuchgroup": ["test.ping"]}], "unknown nodegroup"),
    ([{"a": ["x"], "b": ["y"]}], "expected a function pattern, an @name"),
    (["@"], "expected @runner"),
    (["@run ner"], "expected @runner"),
    ([{"web*": [{"cmd.run": {"argz": []}}]}], "expected a mapping with `args`"),
    ([{"web*": [{"cmd.run": {"args": "ls"}}]}], "`args` must be a list"),
    ([{"web*": [{"cmd.run": {"args": ["(("]}}]}], "not a regular expression"),
    ([{"web*": [["test.ping"]]}], "expected a function pattern, or one pattern"),
]


@pytest.mark.parametrize("entries,why", BAD)
def test_anything_not_understood_is_refused_at_load(entries, why):
    with pytest.raises(AclError, match=re.escape(why)):
        parse_acl(entries, "publisher_acl: fred")


def test_errors_name_the_user_and_item():
    with pytest.raises(AclError, match=r"publisher_acl: fred, item 2"):
        parse_acl(["test.ping", 7], "publisher_acl: fred")


@pytest.mark.parametrize("pattern,name,ok", [
    ("fred", "fred", True), ("fred", "freddy", False), ("fr*", "freddy", True), ("admin.*", "admin_bob", True),
    ("steve|admin.*", "steve", True), ("steve|admin.*", "stevex", False), ("((", "((", True), ("((", "x", False),
])
def test_user_names_match_as_salt_does(pattern, name, ok):
    assert name_matches(pattern, name) is ok


def test_table_users_groups_and_star():
    table = parse_table({"fred": ["test.ping"], "ad.*": ["test.echo"], "ops%": ["pkg.version"], "*": ["test.version"],
                         "^filename": "/etc/x"}, "external_auth: file", options=frozenset({"filename"}))
    assert table.options == {"filename": "/etc/x"}
    fred = table.rights("fred", ["ops"])
    assert fred.allows_minion("test.ping", [], {}, "m", {}) and fred.allows_minion("pkg.version", [], {}, "m", {})
    assert not fred.allows_minion("test.version", [], {}, "m", {})  # '*' only for users no entry names
    other = table.rights("zed", [])
    assert other.allows_minion("test.version", [], {}, "m", {}) and not other.allows_minion("test.ping", [], {}, "m", {})
    assert table.rights("admin", []).allows_minion("test.echo", [], {}, "m", {})
    assert not parse_table({"fred": ["test.ping"]}, "t").rights("zed", ["ops"])  # nothing at all: falsy
    assert table.rights("fred", []).source == ("test.ping",)


def test_unknown_back_end_option_is_refused():
    with pytest.raises(AclError, match=r"unknown option '\^hashtype'"):
        parse_table({"^hashtype": "md5"}, "external_auth: file", options=frozenset({"filename"}))
