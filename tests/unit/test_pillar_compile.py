"""The master's pillar compiler on real files in tmp_path: top files (every target type, order, ignore_missing,
environments), renderers (YAML, Jinja by marker or shebang, sandboxed), includes and merging, the errors (file
and line, never the file's text), containment (traversal, symlinks), and external pillars from a real
distribution on sys.path."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from rx.master.pillar import Compiler, PillarError, PillarSettings
from rx.master.pillar.compile import merge
from rx.master.pillar.ext import ExtPillars

WEB = {"os": "Debian", "role": "web", "ipv4": ["10.0.0.5"]}
DB = {"os": "RedHat", "role": "db", "ipv4": ["10.1.0.9"]}


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def compiler(tmp_path: Path, files: dict[str, str] | None = None, *, envs: dict | None = None, ext: ExtPillars | None
             = None, **settings) -> Compiler:
    base = write(tmp_path / "base", files or {})
    roots = {"base": [str(base)], **(envs or {})}
    return Compiler(PillarSettings(roots=roots, **settings), ext or ExtPillars("rx.pillar.none"))


def fails(c: Compiler, minion_id: str = "web1", grains: dict = WEB, pillarenv: str = "") -> PillarError:
    with pytest.raises(PillarError) as err:
        c.compile(minion_id, grains, pillarenv)
    return err.value


# ---------------------------------------------------------------- top files

TOP = """\
    base:
      '*':
        - common
      'os:Debian':
        - match: grain
        - debian
      'web* and G@role:web':
        - web
      'L@db1,db2':
        - db
      'role:d.*':
        - match: grain_pcre
        - dbgrain
      '10.1.0.0/16':
        - match: ipcidr
        - net
      webs:
        - match: nodegroup
        - group
    """
FILES = {"top.sls": TOP, "common.sls": "common: true\n", "debian.sls": "debian: true\n", "web.sls": "web: true\n",
         "db.sls": "db: true\n", "dbgrain.sls": "dbgrain: true\n", "net.sls": "net: true\n", "group.sls": "group: true\n"}


@pytest.mark.parametrize("minion_id, grains, keys", [
    ("web1", WEB, ["common", "debian", "group", "web"]),
    ("db1", DB, ["common", "db", "dbgrain", "net"]),
    ("other", {}, ["common"]),
])
def test_top_targets_of_every_type(tmp_path, minion_id, grains, keys):
    c = compiler(tmp_path, FILES, nodegroups={"webs": "web*"})
    assert sorted(c.compile(minion_id, grains)) == keys


def test_a_minion_no_top_names_gets_an_empty_pillar(tmp_path):
    assert compiler(tmp_path, {"top.sls": "base:\n  db*:\n    - x\n"}).compile("web1", WEB) == {}
    assert compiler(tmp_path / "none").compile("web1", WEB) == {}  # no top.sls at all


def test_later_files_win_and_order_sorts_targets(tmp_path):
    c = compiler(tmp_path, {
        "top.sls": """\
            base:
              '*':
                - a
              'web1':
                - b
              'w*':
                - c
                - order: -1
            """,
        "a.sls": "v: a\nonly_a: 1\n", "b.sls": "v: b\n", "c.sls": "v: c\nonly_c: 1\n"})
    assert c.compile("web1", WEB) == {"v": "b", "only_a": 1, "only_c": 1}


def test_ignore_missing_and_dirs_with_init(tmp_path):
    c = compiler(tmp_path, {"top.sls": "base:\n  '*':\n    - users\n    - ghost\n    - ignore_missing: true\n",
                            "users/init.sls": "users: [alice]\n"})
    assert c.compile("web1", WEB) == {"users": ["alice"]}


def test_several_roots_are_searched_in_order(tmp_path):
    second = write(tmp_path / "second", {"a.sls": "from: second\n", "b.sls": "b: 1\n"})
    c = Compiler(PillarSettings({"base": [str(write(tmp_path / "first", {
        "top.sls": "base:\n  '*': [a, b]\n", "a.sls": "from: first\n"})), str(second)]}))
    assert c.compile("web1", WEB) == {"from": "first", "b": 1}


def test_environments_and_pillarenv(tmp_path):
    dev = write(tmp_path / "dev", {"top.sls": "dev:\n  '*': [d]\nbase:\n  'web*': [fromdev]\n", "d.sls": "d: 1\n"})
    c = compiler(tmp_path, {"top.sls": "base:\n  '*': [b]\n", "b.sls": "b: 1\n", "fromdev.sls": "fromdev: 1\n"},
                 envs={"dev": [str(dev)]})
    assert c.compile("web1", WEB) == {"b": 1, "d": 1, "fromdev": 1}
    assert c.compile("web1", WEB, "dev") == {"d": 1}
    assert "environment 'nope' is not in the master's pillar_roots (it has: base, dev)" in str(fails(c, pillarenv="nope"))


# ---------------------------------------------------------------- renderers

@pytest.mark.parametrize("text, expect", [
    ("a: 1\n", {"a": 1}),
    ("a: '{{ id }}'\n", {"a": "{{ id }}"}),                         # plain YAML: no Jinja unless asked
    ("{% set x = 2 %}\na: {{ x }}\n", {"a": 2}),                      # starts with a Jinja tag
    ("  {# note #}\na: {{ id }}\n", {"a": "web1"}),
    ("#!jinja|yaml\na: {{ grains.role }}-{{ saltenv }}-{{ sls }}\n", {"a": "web-base-f"}),
    ("#!jinja | yaml\na: {{ salt['grains.get']('ipv4:0') }}\n", {"a": "10.0.0.5"}),
    ("#!yaml\na: '{% raw %}'\n", {"a": "{% raw %}"}),
    ("when: 2024-05-01\nt: 2024-05-01 10:00:00\n", {"when": "2024-05-01", "t": "2024-05-01 10:00:00"}),
    ("#!jinja|yaml\n{% for u in ['a', 'b'] %}\n{{ u }}: {{ loop.index }}\n{% endfor %}\n", {"a": 1, "b": 2}),
    ("#!jinja|yaml\nd: {{ {'k': [1, 2]} | yaml }}\nj: '{{ [1] | json }}'\n", {"d": {"k": [1, 2]}, "j": "[1]"}),
    ("", {}),
    ("# only a comment\n", {}),
])
def test_renderers(tmp_path, text, expect):
    assert compiler(tmp_path, {"top.sls": "base:\n  '*': [f]\n", "f.sls": text}).compile("web1", WEB) == expect


def test_jinja_sees_the_pillar_so_far_and_templates_from_the_root(tmp_path):
    c = compiler(tmp_path, {
        "top.sls": "base:\n  '*': [a, b]\n", "a.sls": "port: 80\n",
        "macros/m.jinja": "{% macro double(x) %}{{ x * 2 }}{% endmacro %}",
        "b.sls": "#!jinja|yaml\n{% from 'macros/m.jinja' import double %}\nurl: {{ pillar.port }}\n"
                 "twice: {{ double(pillar.port) }}\ngot: {{ salt['pillar.get']('port') }}\n"})
    assert c.compile("web1", WEB) == {"port": 80, "url": 80, "twice": 160, "got": 80}


# ---------------------------------------------------------------- includes and merging

def test_includes_merge_under_the_including_file(tmp_path):
    c = compiler(tmp_path, {
        "top.sls": "base:\n  '*': [app.main]\n",
        "app/main.sls": "include:\n  - .defaults\n  - ..shared\n  - app.nested: {key: 'x:y', defaults: {n: 7}}\n"
                        "v: main\n",
        "app/defaults.sls": "v: defaults\nonly_defaults: 1\n",
        "shared/init.sls": "include: [app.main]\nshared: 1\n",              # a cycle ends here
        "app/nested.sls": "#!jinja|yaml\nn: {{ n }}\n"})
    assert c.compile("web1", WEB) == {"v": "main", "only_defaults": 1, "shared": 1, "x": {"y": {"n": 7}}}


@pytest.mark.parametrize("strategy, merge_lists, expect", [
    ("smart", False, {"a": {"x": 1, "y": 2, "l": [3]}, "s": "b"}),
    ("recurse", True, {"a": {"x": 1, "y": 2, "l": [1, 2, 3]}, "s": "b"}),
    ("overwrite", False, {"a": {"y": 2, "l": [3]}, "s": "b"}),
])
def test_merge_strategies(tmp_path, strategy, merge_lists, expect):
    c = compiler(tmp_path, {"top.sls": "base:\n  '*': [one, two]\n", "one.sls": "a: {x: 1, l: [1, 2]}\ns: a\n",
                            "two.sls": "a: {y: 2, l: [3]}\ns: b\n"}, strategy=strategy, merge_lists=merge_lists)
    result = c.compile("web1", WEB)
    if merge_lists:
        result["a"]["l"] = sorted(result["a"]["l"])
    assert result == expect


def test_merge_does_not_change_its_inputs():
    a, b = {"k": {"x": 1}}, {"k": {"y": 2}}
    assert merge(a, b) == {"k": {"x": 1, "y": 2}} and a == {"k": {"x": 1}} and b == {"k": {"y": 2}}


# ---------------------------------------------------------------- bad input: file and line, never the text

SECRET = "hunter2-s3cr3t"


@pytest.mark.parametrize("files, where, line, message", [
    ({"f.sls": f"pw: {SECRET}\n  bad: [\n"}, "base:f.sls", 2, "not valid YAML"),
    ({"f.sls": f"- {SECRET}\n- b\n"}, "base:f.sls", 0, "is not a map but a list"),
    ({"f.sls": f"'{SECRET}'\n"}, "base:f.sls", 0, "is not a map but a string"),
    ({"f.sls": "1: x\n"}, "base:f.sls", 0, "top-level key '1' is not a string"),
    ({"f.sls": "{% if %}\nx: 1\n"}, "base:f.sls", 1, "Jinja syntax error"),
    ({"f.sls": "#!jinja|yaml\na: 1\nb: {{ grains.nope.deeper }}\n"}, "base:f.sls", 3, "UndefinedError"),
    ({"f.sls": f"#!jinja|yaml\n{{% set s = '{SECRET}' %}}\n\nx: {{{{ s | int(base=s) + [1] }}}}\n"},
     "base:f.sls", 4, "(its message is not shown"),
    ({"f.sls": "#!jinja|yaml\nx: {{ ''.__class__.__mro__ }}\n"}, "base:f.sls", 2, "SecurityError"),
    ({"f.sls": "#!py\nx = 1\n"}, "base:f.sls", 1, "renderer 'py' is not available"),
    ({"f.sls": "#!jinja|yaml\n{% include 'missing.jinja' %}\n"}, "base:f.sls", 2, "TemplateNotFound"),
    ({"f.sls": "include: [ghost]\n"}, "base:f.sls", 0, "include 'ghost': no ghost.sls nor ghost/init.sls"),
    ({"f.sls": "include: ghost\n"}, "base:f.sls", 0, "include: must be a list"),
    ({"f.sls": "include: [{a: {bad: 1}}]\n"}, "base:f.sls", 0, "include item"),
    ({"f.sls": "{% for i in range(99999) %}{% for j in range(99999) %}{{ 'x' * 99 }}{% endfor %}{% endfor %}\n"},
     "base:f.sls", 0, "Jinja rendered more than"),
    ({"f.sls": "a: &a [1,1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
               "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
               "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"},
     "base:f.sls", 0, "more than 500000 values"),
    # the top file
    ({"top.sls": "base:\n  'web and or':\n    - f\n"}, "base:top.sls", 2, "malformed compound target"),
    ({"top.sls": "base:\n  'os':\n    - match: grain\n    - f\n"}, "base:top.sls", 2, "needs the form key:value"),
    ({"top.sls": "base:\n  'I@role:web':\n    - f\n"}, "base:top.sls", 2, "pillar targets (I@, J@) cannot be used"),
    ({"top.sls": "base:\n  'x':\n    - match: pillar\n    - f\n"}, "base:top.sls", 2, "match 'pillar' is not one"),
    ({"top.sls": "base:\n  'x':\n    - match: sql\n"}, "base:top.sls", 2, "match 'sql' is not one"),
    ({"top.sls": "base:\n  '*': f\n"}, "base:top.sls", 2, "must be a list of sls names"),
    ({"top.sls": "base:\n  '*':\n    - {nope: 1}\n"}, "base:top.sls", 2, "is neither an sls name"),
    ({"top.sls": "base:\n  '*':\n    - order: first\n"}, "base:top.sls", 2, "order must be a whole number"),
    ({"top.sls": "base:\n  '*': [ghost]\n"}, "base:top.sls", 2, "sls 'ghost' is not in environment 'base'"),
    ({"top.sls": "base:\n  N@nosuch:\n    - f\n"}, "base:top.sls", 2, "unknown nodegroup"),
    ({"top.sls": "prod:\n  '*': [f]\n"}, "base:top.sls", 1, "environment 'prod' is not in the master's pillar_roots"),
    ({"top.sls": "- base\n"}, "base:top.sls", 0, "must be a map of environment to targets"),
    ({"top.sls": "{% if grains.x.y %}\n"}, "base:top.sls", 1, "Jinja"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_errors_name_file_and_line_without_quoting_it(tmp_path, files, where, line, message):
    c = compiler(tmp_path, {"top.sls": "base:\n  '*': [f]\n", **files})
    err = fails(c)
    assert (err.where, err.line) == (where, line), str(err)
    assert message in str(err)
    assert SECRET not in str(err)


@pytest.mark.parametrize("name", [
    "../etc/passwd", "/etc/passwd", "a..b", "a.", "a/b", "a\\b", "a\x00b", "a\nb", "", "..", "...x", ".",
])
def test_sls_names_that_could_leave_the_root_are_refused(tmp_path, name):
    for top in ({"top.sls": f"base:\n  '*':\n    - {name!r}\n".replace("'", '"')},
                {"top.sls": "base:\n  '*': [f]\n", "f.sls": f"include:\n  - {name!r}\n".replace("'", '"')}):
        err = fails(compiler(tmp_path, top))
        assert any(w in str(err) for w in ("not a plain name", "goes above the pillar root", "non-empty")), str(err)


def test_an_encoded_name_is_not_decoded(tmp_path):
    (tmp_path / "secret.sls").write_text("stolen: true\n")
    c = compiler(tmp_path, {"top.sls": "base:\n  '*': ['%2e%2e.secret']\n"})
    assert "sls '%2e%2e.secret' is not in environment 'base'" in str(fails(c))


@pytest.mark.parametrize("template", ["../outside.jinja", "/etc/hostname", "a/../../outside.jinja", "./x.jinja"])
def test_templates_that_could_leave_the_root_are_refused(tmp_path, template):
    (tmp_path / "outside.jinja").write_text("stolen: true\n")
    err = fails(compiler(tmp_path, {"top.sls": "base:\n  '*': [f]\n",
                                    "f.sls": f"#!jinja|yaml\n{{% include '{template}' %}}\n"}))
    assert (err.where, err.line) == ("base:f.sls", 2), str(err)
    assert "inside the pillar root" in str(err) or "relative to the pillar root" in str(err), str(err)


def test_symlinks_out_of_the_root_are_refused(tmp_path):
    outside = write(tmp_path / "outside", {"secret.sls": "stolen: true\n", "dir/init.sls": "stolen: true\n",
                                           "t.jinja": "stolen: true"})
    base = write(tmp_path / "base", {"top.sls": "base:\n  '*': [linked]\n", "inside.sls": "ok: true\n"})
    for name, target in (("linked.sls", outside / "secret.sls"), ("linked", outside / "dir"),
                         ("t.jinja", outside / "t.jinja")):
        os.symlink(target, base / name)
        c = Compiler(PillarSettings({"base": [str(base)]}))
        if name == "t.jinja":
            (base / "top.sls").write_text("base:\n  '*': [j]\n")
            (base / "j.sls").write_text("#!jinja|yaml\n{% include 't.jinja' %}\n")
        err = fails(c)
        assert "a symlink takes it out of its pillar root" in str(err) and "stolen" not in str(err)
        os.unlink(base / name)
    os.symlink(base / "inside.sls", base / "linked.sls")  # a link inside the root is followed
    (base / "top.sls").write_text("base:\n  '*': [linked]\n")
    assert Compiler(PillarSettings({"base": [str(base)]})).compile("web1", WEB) == {"ok": True}


# ---------------------------------------------------------------- external pillars: a real distribution

def _dist(root: Path, name: str, code: str) -> None:
    """An installed distribution `name` on sys.path whose module `<name>_ext` defines `hook` (entry point rx.pillar)."""
    (root / f"{name}_ext.py").write_text(textwrap.dedent(code))
    info = root / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[rx.pillar]\n{name} = {name}_ext:hook\n")


EXT_OK = """\
    def hook(minion_id, grains, pillar):
        pillar["files"]["x"] = "changed"   # a copy: the compiler's own is not changed
        return {"vault": {"token": minion_id + "-token", "role": grains["role"]}, "files": {"y": 2}}
    """


@pytest.mark.parametrize("hooks, expect", [
    ({"ok": EXT_OK}, {"files": {"x": 1, "y": 2}, "vault": {"token": "web1-token", "role": "web"}}),
    ({"ok": EXT_OK, "none": "def hook(minion_id, grains, pillar):\n    return None\n"},
     {"files": {"x": 1, "y": 2}, "vault": {"token": "web1-token", "role": "web"}}),
    ({"abroken": "raise ImportError('no such client library')\n", "ok": EXT_OK},
     "ext_pillar abroken: cannot be loaded: ImportError: no such client library"),
    ({"list": "def hook(minion_id, grains, pillar):\n    return ['not', 'a', 'map']\n"},
     "ext_pillar list: returned a list, not a map with string keys"),
    ({"down": "def hook(minion_id, grains, pillar):\n    raise RuntimeError('vault down')\n"},
     "ext_pillar down: raised RuntimeError: vault down"),
    ({"notcallable": "hook = 3\n"}, "ext_pillar notcallable: the entry point is a int, not a callable"),
])
def test_external_pillars_from_installed_distributions(tmp_path, monkeypatch, request, hooks, expect):
    site = tmp_path / "site"
    site.mkdir()
    tag = f"t{abs(hash(request.node.name)) % 10**8}"  # module names unique to this test case
    for name, code in hooks.items():
        _dist(site, f"{name}{tag}", code)
    monkeypatch.syspath_prepend(str(site))
    c = compiler(tmp_path, {"top.sls": "base:\n  '*': [f]\n", "f.sls": "files: {x: 1}\n"}, ext=ExtPillars())
    if isinstance(expect, dict):
        assert c.compile("web1", WEB) == expect
    else:
        assert str(fails(c)) == expect.replace(":", f"{tag}:", 1)
