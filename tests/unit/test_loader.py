"""rx.minion.loader through the Registry: the four sources (module_dirs, synced, entry points,
built-in) with real files and a real installed distribution on sys.path, their precedence,
`__virtual__` with the minion's context, modules that cannot serve, and laziness."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from rx.minion import loader
from rx.minion.calls import call_one
from rx.minion.registry import Registry, UnknownFunction
from rx.modules import ExecContext
from rx.modules import sys as sysmod
from tests.support.pkgs import import_site, install_dist

GREET = '''
"""Greetings."""
__all__ = ["greet"]


def greet(name: str = "world") -> str:
    """Return a greeting.

    CLI example: rx '*' {mod}.greet
    """
    return "{how} " + name
'''


def _module(d: Path, file: str, text: str) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    path = d / file
    path.write_text(textwrap.dedent(text))
    return path


def _greeter(d: Path, mod: str, how: str, file: str = "") -> Path:
    return _module(d, file or f"{mod}.py", GREET.replace("{mod}", mod).replace("{how}", how))


def _registry(module_dirs=(), cachedir: str = "", grains: dict | None = None) -> Registry:
    reg = Registry(SimpleNamespace(module_dirs=tuple(str(d) for d in module_dirs), cachedir=cachedir))
    reg.context = ExecContext(minion_id="web1", grains=grains or {}, registry=reg)
    return reg


def _call(reg: Registry, fun: str, *args, **kwargs):
    return call_one(reg, fun, list(args), kwargs, reg.context)


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A site directory on sys.path; entry points are read again before and after the test."""
    site = import_site(tmp_path, monkeypatch)
    loader.entry_point_candidates(refresh=True)
    yield site
    monkeypatch.undo()
    loader.entry_point_candidates(refresh=True)


# ---------------------------------------------------------------- sources and precedence

def test_a_module_from_module_dirs(tmp_path):
    _greeter(tmp_path / "mods", "hello", "hi")
    reg = _registry([tmp_path / "mods"])
    assert _call(reg, "hello.greet", "you") == ("hi you", 0)
    assert "hello.greet" in reg.functions() and "hello" in reg.modules()
    assert reg.provider("hello") == "hello"
    assert reg.doc("hello.greet").startswith("Return a greeting.")


def test_a_synced_module(tmp_path):
    _greeter(tmp_path / "cache" / "extmods" / "modules", "synced", "hey")
    reg = _registry(cachedir=str(tmp_path / "cache"))
    assert _call(reg, "synced.greet") == ("hey world", 0)
    assert _registry(cachedir=str(tmp_path / "elsewhere")).sources().get("synced") is None  # absent dir: fine


def test_a_module_from_an_installed_package_entry_point(site):
    install_dist(site, "rx-demo", "1.0", {"rxdemo/__init__.py": "", "rxdemo/greeter.py": GREET.replace(
        "{mod}", "greeter").replace("{how}", "hello from a package,")}, {"rx.modules": {"greeter": "rxdemo.greeter"}})
    loader.entry_point_candidates(refresh=True)
    reg = _registry()
    [cand] = reg.sources()["greeter"]
    assert cand.source == loader.ENTRY_POINT and cand.label == "greeter = rxdemo.greeter from rx-demo 1.0"
    assert _call(reg, "greeter.greet", "rx") == ("hello from a package, rx", 0)
    assert reg.provider("greeter") == "greeter"


def test_an_entry_point_must_name_a_module(site):
    install_dist(site, "rx-bad", "0.1", {"rxbad.py": "def f():\n    return 1\n"},
                 {"rx.modules": {"notmod": "rxbad:f", "missing": "rxbad_nowhere.mod"}})
    loader.entry_point_candidates(refresh=True)
    reg = _registry()
    value, rc = _call(reg, "notmod.f")
    assert rc == 1 and "the entry point names a function, not a module" in value
    assert "ModuleNotFoundError" in reg.unavailable()["missing"]
    assert _call(reg, "test.ping") == (True, 0)


def test_precedence_module_dirs_then_synced_then_entry_points_then_built_in(tmp_path, site, caplog):
    for how, where in (("dirs", tmp_path / "mods"), ("synced", tmp_path / "cache" / "extmods" / "modules")):
        _greeter(where, "both", how)
        _module(where, "test.py", f'__all__ = ["ping"]\n\ndef ping():\n    return "{how}"\n')
    install_dist(site, "rx-over", "2.0", {"rxover/__init__.py": "", "rxover/both.py": GREET.replace(
        "{mod}", "both").replace("{how}", "package"), "rxover/cmd.py": '__all__ = ["run"]\n\ndef run(c):\n'
        '    return "package"\n'}, {"rx.modules": {"both": "rxover.both", "cmd": "rxover.cmd"}})
    loader.entry_point_candidates(refresh=True)
    with caplog.at_level(logging.WARNING, "rx.minion.loader"):
        full = _registry([tmp_path / "mods"], str(tmp_path / "cache"))
    warned = [r.getMessage() for r in caplog.records]
    assert [c.source for c in full.sources()["both"]] == ["module_dirs", "synced", "entry point"]
    assert _call(full, "both.greet") == ("dirs world", 0)
    assert _call(full, "test.ping") == ("dirs", 0)  # a custom module replaces the built-in of its name
    assert _call(_registry(cachedir=str(tmp_path / "cache")), "both.greet") == ("synced world", 0)
    assert _call(_registry(), "both.greet") == ("package world", 0)
    assert _call(_registry(), "cmd.run", "x") == ("package", 0)  # a package beats the built-in
    assert len([w for w in warned if "'both'" in w]) == 1 and len([w for w in warned if "'test'" in w]) == 1
    [both] = [w for w in warned if "'both'" in w]
    assert both.index("(module_dirs)") < both.index("(synced)") < both.index("(entry point)")
    caplog.clear()
    with caplog.at_level(logging.WARNING, "rx.minion.loader"):
        full.rescan()
        _registry([tmp_path / "mods"], str(tmp_path / "cache"))
    assert not caplog.records, "a collision is logged once per process"


def test_a_custom_module_that_says_no_falls_back_to_the_next_source(tmp_path):
    _module(tmp_path / "mods", "test.py", '''
        __all__ = ["ping"]

        def __virtual__():
            return False, "only on the build hosts"

        def ping():
            return "custom"
    ''')
    reg = _registry([tmp_path / "mods"])
    assert _call(reg, "test.ping") == (True, 0)
    assert reg.provider("test") == "test"


def test_a_file_serves_the_name_in_its_virtualname(tmp_path):
    _module(tmp_path / "mods", "my_tool_v2.py", '''
        __virtualname__ = "tool"  # Salt's convention, read without importing
        __all__ = ["name"]

        def name():
            return __virtualname__
    ''')
    reg = _registry([tmp_path / "mods"])
    assert _call(reg, "tool.name") == ("tool", 0)
    assert reg.provider("tool") == "my_tool_v2"
    assert "my_tool_v2" not in reg.sources()


def test_files_that_are_not_modules_are_skipped(tmp_path, caplog):
    d = tmp_path / "mods"
    _greeter(d, "ok", "hi")
    for name in ("_helper.py", ".hidden.py", "bad-name.py", "notes.txt"):
        _module(d, name, "raise SystemExit('never imported')\n")
    (d / "pkgdir.py").mkdir()
    with caplog.at_level(logging.WARNING, "rx.minion.loader"):
        reg = _registry([d, tmp_path / "nowhere"])
    assert {n for n, cands in reg.sources().items() if cands[0].source == "module_dirs"} == {"ok"}
    text = caplog.text
    assert "'bad-name' is not a module name" in text and "nowhere does not exist" in text


def test_virtual_gets_the_minions_context(tmp_path):
    _module(tmp_path / "mods", "debonly.py", '''
        __all__ = ["who"]

        def __virtual__(ctx):
            if ctx.grains.get("os_family") != "Debian":
                return False, f"needs a Debian host, this is {ctx.grains.get('os_family')} ({ctx.minion_id})"
            return "debonly"  # Salt's modules return their virtual name: that is a yes

        def who(ctx):
            return ctx.minion_id
    ''')
    assert _call(_registry([tmp_path / "mods"], grains={"os_family": "Debian"}), "debonly.who") == ("web1", 0)
    reg = _registry([tmp_path / "mods"], grains={"os_family": "RedHat"})
    value, rc = _call(reg, "debonly.who")
    assert rc == 1 and value.startswith("'debonly.who' is not available. Module 'debonly' is unavailable here: ")
    assert "needs a Debian host, this is RedHat (web1)" in value


# ---------------------------------------------------------------- modules that cannot serve

BROKEN = {
    "noimport.py": ("import rx_no_such_library\n__all__ = ['f']\n", "cannot import: ModuleNotFoundError"),
    "syntax.py": ("def f(:\n", "cannot import: SyntaxError"),
    "exits.py": ("raise SystemExit(3)\n", "cannot import: SystemExit: 3"),
    "raises.py": ("raise RuntimeError('no config file')\n", "cannot import: RuntimeError: no config file"),
    "noall.py": ("def f():\n    return 1\n", "defines no __all__"),
    "virtfail.py": ("__all__ = ['f']\ndef __virtual__():\n    return {}['x']\ndef f():\n    return 1\n",
                    "__virtual__ failed: KeyError: 'x'"),
    "virtno.py": ("__all__ = ['f']\ndef __virtual__():\n    return False\ndef f():\n    return 1\n",
                  "__virtual__ returned False"),
}


def test_a_module_that_cannot_serve_is_listed_with_why_and_the_rest_keep_working(tmp_path):
    d = tmp_path / "mods"
    for file, (text, _) in BROKEN.items():
        _module(d, file, text)
    _greeter(d, "fine", "hi")
    reg = _registry([d])
    unavailable = reg.unavailable()
    for file, (_, why) in BROKEN.items():
        name = file[:-3]
        assert why in unavailable[name] and str(d / file) in unavailable[name], unavailable[name]
        value, rc = _call(reg, f"{name}.f")
        assert rc == 1 and value.startswith(f"'{name}.f' is not available. Module '{name}' is unavailable here: ")
        assert name not in reg.modules()
    assert _call(reg, "fine.greet") == ("hi world", 0) and _call(reg, "test.ping") == (True, 0)
    ctx = reg.context
    assert sysmod.list_unavailable(ctx) == unavailable
    doc = sysmod.doc(ctx, "noimport")
    assert doc == {"noimport": f"Module 'noimport' is unavailable here: {unavailable['noimport']}"}
    assert "noimport" not in sysmod.doc(ctx)  # all docs: only what can be called


def test_only_public_callables_of_all_are_exported(tmp_path):
    _module(tmp_path / "mods", "mixed.py", '''
        import os
        __all__ = ["ok", "_private", "CONST", "os", "missing", "not-a-name", 5]
        CONST = 3

        def ok():
            return "ok"

        def _private():
            return "private"

        def hidden():
            return "hidden"
    ''')
    reg = _registry([tmp_path / "mods"])
    assert reg.module("mixed").exported == ("ok",)
    for fun in ("mixed._private", "mixed.CONST", "mixed.os", "mixed.missing", "mixed.hidden"):
        with pytest.raises(UnknownFunction):
            reg.resolve(fun)


def test_a_type_error_raised_inside_a_function_is_its_traceback(tmp_path):
    _module(tmp_path / "mods", "buggy.py", '__all__ = ["f"]\n\ndef f(x):\n    return len(x)\n')
    value, rc = _call(_registry([tmp_path / "mods"]), "buggy.f", 5)
    assert rc == 1 and "Traceback" in value and "TypeError: object of type 'int' has no len()" in value


def test_rescan_finds_new_files_and_asks_virtual_again(tmp_path):
    d = tmp_path / "mods"
    d.mkdir()
    reg = _registry([d])
    assert _call(reg, "late.greet")[1] == 1
    _greeter(d, "late", "now")
    assert _call(reg, "late.greet")[1] == 1  # not looked for until a refresh
    reg.rescan()
    assert _call(reg, "late.greet") == ("now world", 0)


# ---------------------------------------------------------------- laziness

LAZY_PROBE = """
import sys
from rx.minion.registry import Registry
from rx.minion.calls import call_one
from rx.modules import ExecContext
before = {m for m in sys.modules if m.startswith("rx.modules.")}
reg = Registry()
after_scan = {m for m in sys.modules if m.startswith("rx.modules.")}
value = call_one(reg, "test.ping", [], {}, ExecContext(registry=reg))
print(sorted(before), sorted(after_scan), sorted(m for m in sys.modules if m.startswith("rx.modules.")), value)
"""


def test_test_ping_imports_no_other_module():
    out = subprocess.run([sys.executable, "-c", LAZY_PROBE], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split("\n")[0] == "[] [] ['rx.modules.test'] (True, 0)", out.stdout + out.stderr
