"""The `grains` execution module called directly: reading (get, item, has_value, equals,
filter_by) on a grains dict, and setting (setval & co) on a real grains file in tmp_path."""

from __future__ import annotations

import os

import pytest
import yaml

from rx.config import MinionConfig
from rx.modules import CommandError, ExecContext
from rx.modules import grains as g

GRAINS = {"os": "Debian", "os_family": "Debian", "osmajorrelease": 12, "ipv4": ["127.0.0.1", "10.0.0.2"],
          "pkg": {"apache": "apache2", "list": [{"name": "a"}, {"port": 80}]}, "roles": ["web"], "id": "web1",
          "host": "web1", "fqdn": "web1.corp.example", "serialnumber": "ABC123"}


def ctx(tmp_path=None, grains=None, static=None) -> ExecContext:
    cfg = MinionConfig(id="web1", config_dir=str(tmp_path), grains=static or {}) if tmp_path else None
    return ExecContext(minion_id="web1", grains=dict(GRAINS if grains is None else grains), config=cfg)


def grains_file(tmp_path) -> dict:
    return yaml.safe_load((tmp_path / "grains").read_text())


@pytest.mark.parametrize("key, kw, expected", [
    ("os", {}, "Debian"),
    ("pkg:apache", {}, "apache2"),
    ("pkg|apache", {"delimiter": "|"}, "apache2"),
    ("ipv4:1", {}, "10.0.0.2"),
    ("pkg:list:port", {}, 80),
    ("nope", {}, ""),
    ("nope", {"default": "x"}, "x"),
    ("os:deeper", {"default": None}, None),
])
def test_get(key, kw, expected):
    assert g.get(ctx(), key, **kw) == expected


def test_item_ls_has_value_equals_items():
    c = ctx()
    assert g.item(c, "os", "pkg:apache", "missing") == {"os": "Debian", "pkg:apache": "apache2", "missing": ""}
    assert g.ls(c) == sorted(GRAINS)
    assert g.has_value(c, "pkg:apache") and not g.has_value(c, "pkg:nginx")
    assert g.equals(c, "osmajorrelease", "12") and not g.equals(c, "os", "RedHat")
    assert g.items(c) == GRAINS
    masked = g.items(c, sanitize=True)
    assert (masked["host"], masked["fqdn"], masked["serialnumber"]) == ("MINION", "MINION.DOMAINNAME", "xxxxxx")


@pytest.mark.parametrize("args, expected", [
    (({"Debian": "apache2", "RedHat": "httpd"},), "apache2"),
    (({"Deb*": "glob", "default": "d"},), "glob"),
    (({"RedHat": "httpd", "default": "fallback"},), "fallback"),
    (({"RedHat": "httpd"},), None),
    (({"web1": "by id"}, "id"), "by id"),
    (({"db": "db", "web": "web"}, "roles"), "web"),  # a list grain matches on its first item that does
    # Salt's documented examples: base merged under, merge over
    (({"A": "B", "C": {"D": {"E": "F", "G": "H"}}}, "xxx", {"D": {"E": "I"}, "J": "K"}, "C"),
     {"D": {"E": "I", "G": "H"}, "J": "K"}),
    (({"default": {"A": {"B": "C"}, "D": "E"}, "F": {"A": {"B": "G"}}, "H": {"D": "I"}}, "xxx", {"D": "J"}, "F",
      "default"), {"A": {"B": "G"}, "D": "J"}),
    (({"default": {"A": {"B": "C"}, "D": "E"}, "F": {"A": {"B": "G"}}, "H": {"D": "I"}}, "xxx", {"D": "J"}, "H",
      "default"), {"A": {"B": "C"}, "D": "J"}),
])
def test_filter_by(args, expected):
    assert g.filter_by(ctx(), *args) == expected


def test_filter_by_refuses_bad_arguments():
    with pytest.raises(CommandError, match="lookup_dict must be a dict"):
        g.filter_by(ctx(), "Debian")
    with pytest.raises(CommandError, match="merge must be a dict"):
        g.filter_by(ctx(), {"Debian": {"a": 1}}, merge="x")


def test_setval_setvals_persist_in_the_grains_file(tmp_path):
    c = ctx(tmp_path)
    assert g.setval(c, "role", "db") == {"role": "db"}
    assert g.setvals(c, {"rack": "r12", "tags": ["a", "b"]}) == {"rack": "r12", "tags": ["a", "b"]}
    assert grains_file(tmp_path) == {"role": "db", "rack": "r12", "tags": ["a", "b"]}
    assert g.setvals(c, {"rack": None}, destructive=True) == {"rack": None}
    assert grains_file(tmp_path) == {"role": "db", "tags": ["a", "b"]}
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".grains.")], "no temporary file left behind"


def test_append_remove(tmp_path):
    c = ctx(tmp_path)
    assert g.append(c, "roles", "db") == {"roles": ["web", "db"]}
    assert g.append(c, "roles", "web") == "The val web was already in the list roles"
    assert g.append(c, "new", ["x", "y"]) == {"new": ["x", "y"]}
    with pytest.raises(CommandError, match="not a valid list"):
        g.append(c, "os", "x")
    assert g.append(c, "os", "x", convert=True) == {"os": ["Debian", "x"]}
    assert g.append(c, "pkg:extra", "m") == {"pkg": {**GRAINS["pkg"], "extra": ["m"]}}
    assert g.remove(c, "roles", "web") == {"roles": []}
    assert g.remove(c, "roles", "zzz") == "The val zzz was not in the list roles"
    assert grains_file(tmp_path)["new"] == ["x", "y"]


def test_set_delval_delkey(tmp_path):
    c = ctx(tmp_path)
    assert g.set(c, "apps:myapp:port", 2209) == {"comment": "", "changes": {"apps": {"myapp": {"port": 2209}}},
                                                  "result": True}
    assert grains_file(tmp_path) == {"apps": {"myapp": {"port": 2209}}}
    assert g.set(c, "os", "Debian")["comment"] == "Grain is already set"
    refused = g.set(c, "roles", "db")
    assert refused["result"] is False and "force=True" in refused["comment"]
    assert g.set(c, "roles", "db", force=True)["result"] is True
    assert g.delval(c, "host") == {"comment": "", "changes": {"host": None}, "result": True}
    assert grains_file(tmp_path)["host"] is None
    assert g.delkey(c, "host")["result"] is True
    assert "host" not in grains_file(tmp_path)


def test_a_grain_from_the_minion_config_is_not_set_in_the_file(tmp_path):
    c = ctx(tmp_path, static={"role": "web"})
    with pytest.raises(CommandError, match=r"role: set in the minion config .*grains:.*change it there"):
        g.setval(c, "role", "db")
    assert not (tmp_path / "grains").exists()


def test_a_broken_grains_file_is_reported_and_left_alone(tmp_path):
    (tmp_path / "grains").write_text("role: [unclosed\n")
    with pytest.raises(CommandError, match="is not valid YAML"):
        g.setval(ctx(tmp_path), "role", "db")
    assert (tmp_path / "grains").read_text() == "role: [unclosed\n"
    (tmp_path / "grains").write_text("- a list\n")
    with pytest.raises(CommandError, match="must be a YAML mapping"):
        g.setval(ctx(tmp_path), "role", "db")


def test_bad_input_gets_a_message(tmp_path):
    with pytest.raises(CommandError, match="setvals: grains must be a dict"):
        g.setvals(ctx(tmp_path), "role=db")
    with pytest.raises(CommandError, match="grains file's place is unknown"):
        g.setval(ctx(), "role", "db")
    with pytest.raises(CommandError, match="cannot open the config dir"):
        g.setval(ctx(tmp_path / "missing"), "role", "db")
    if os.geteuid() != 0:  # root writes anywhere
        os.chmod(tmp_path, 0o500)
        try:
            with pytest.raises(CommandError, match="cannot write the grains file"):
                g.setval(ctx(tmp_path), "role", "db")
        finally:
            os.chmod(tmp_path, 0o700)


def test_concurrent_jobs_do_not_lose_each_others_grains(tmp_path):
    """Jobs run in separate processes: eight of them setting a grain each at once all land in the file."""
    pids = []
    for n in range(8):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                for _ in range(5):
                    g.setval(ctx(tmp_path), f"k{n}", n)
                code = 0
            finally:
                os._exit(code)
        pids.append(pid)
    assert all(os.waitpid(pid, 0)[1] == 0 for pid in pids)
    assert grains_file(tmp_path) == {f"k{n}": n for n in range(8)}
